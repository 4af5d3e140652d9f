// Test-only crash points on the write path, inert unless NIXFLEET_FAULT_CRASH is set, e.g.
// `after_commit:0.01` or `before_commit:0.02,mid_broadcast:0.05`: at a named point the process
// SIGKILLs itself with that probability (test/faults/crash.test.ts). Never set it in production.
export type CrashPoint = 'before_commit' | 'after_commit' | 'mid_broadcast';

const POINTS: readonly CrashPoint[] = ['before_commit', 'after_commit', 'mid_broadcast'];

function parse(spec: string | undefined): Partial<Record<CrashPoint, number>> | null {
  if (!spec) return null;
  const odds: Partial<Record<CrashPoint, number>> = {};
  for (const part of spec.split(',')) {
    const [point, probability] = part.trim().split(':');
    const p = Number(probability);
    if (!POINTS.includes(point as CrashPoint) || !(p >= 0 && p <= 1)) {
      throw new Error(`NIXFLEET_FAULT_CRASH: "${part}" is not <point>:<probability> with point one of ${POINTS.join(', ')}`);
    }
    odds[point as CrashPoint] = p;
  }
  return odds;
}

const odds = parse(process.env.NIXFLEET_FAULT_CRASH);

/** Kills the process with SIGKILL at `point` with the configured probability; a no-op when unset. */
export function maybeCrash(point: CrashPoint): void {
  if (odds === null) return;
  const p = odds[point];
  if (p !== undefined && Math.random() < p) process.kill(process.pid, 'SIGKILL');
}
