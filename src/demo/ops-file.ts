// The demo agents' ops file (NIXFLEET_OPS_FILE): every op an agent runs as a process runs the op
// simulator (simulated-op.ts) instead of nixos-rebuild, at the demo's pace and failing now and
// then as such an op does. Written to a temporary directory for one demo run.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILT_IN_OPS } from '../agent/index.js';
import { AGENT_OPS } from '../protocol/agent-wire.js';

/** The simulator beside this module (dist/demo/simulated-op.js in a build). */
export const DEFAULT_SIMULATOR = fileURLToPath(new URL('./simulated-op.js', import.meta.url));

/** How often each op fails; others fail at DEFAULT_FAIL_RATE. */
const FAIL_RATES: Readonly<Record<string, number>> = { pull: 0.03, switch: 0.08, 'pull-switch': 0.08, test: 0.09, rollback: 0.1, reboot: 0.05 };
const DEFAULT_FAIL_RATE = 0.05;

export interface SimulatedOpsOptions {
  /** Path of simulated-op.js. */
  simulator: string;
  /** The demo's time multiplier: ops take 1/speed of their usual time. */
  speed: number;
  /** One fail rate for every op instead of the usual ones (tests use 0). */
  failRate?: number;
}

/** `{op: argv}` for every op the agent runs as a process (not `stop` and `restart`, which it carries out itself). */
export function simulatedOps(options: SimulatedOpsOptions): Record<string, string[]> {
  const ops: Record<string, string[]> = {};
  for (const op of AGENT_OPS) {
    if (BUILT_IN_OPS.includes(op)) continue;
    const failRate = options.failRate ?? FAIL_RATES[op] ?? DEFAULT_FAIL_RATE;
    ops[op] = [process.execPath, options.simulator, '{op}', '--hostname', '{hostname}', '--duration-scale', String(1 / options.speed), '--fail-rate', String(failRate)];
  }
  return ops;
}

export interface OpsFile {
  path: string;
  /** Removes the file and its directory. Idempotent. */
  remove(): void;
}

export function writeOpsFile(options: SimulatedOpsOptions): OpsFile {
  const dir = mkdtempSync(join(tmpdir(), 'nixfleet-demo-'));
  const path = join(dir, 'ops.json');
  writeFileSync(path, `${JSON.stringify({ ops: simulatedOps(options) }, null, 2)}\n`);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
