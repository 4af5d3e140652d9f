// Reads vitest's JSON report and prints the plain summary line CI reads: "N passed, N failed".
// Exits non-zero when a test failed, a file failed to load, or no test ran at all.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.test-results/vitest.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (error) {
  console.log('0 passed, 1 failed');
  console.error(`no test report at ${file}: ${error.message}`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
// A suite that failed to load counts as a failure even though none of its tests ran.
const brokenFiles = (report.testResults ?? []).filter((r) => r.status === 'failed' && (r.assertionResults ?? []).length === 0).length;
let failed = (report.numFailedTests ?? 0) + brokenFiles;
// Unhandled errors fail the run without failing a test; they count as one failure here.
if (report.success === false && failed === 0) {
  failed = 1;
  console.error('the run reported errors outside any test (unhandled errors): see the output above');
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
