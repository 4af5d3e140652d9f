// The figures of one fault-suite run: schedules, faults by kind, clients, violations, convergence
// times, lost acknowledged changes, resyncs by reason, storm encodings. Printed from afterAll, and
// appended as one JSON line to $FAULT_SUMMARY_FILE when set (to add up a soak run).
import { appendFileSync } from 'node:fs';
import type { StateSyncStats } from '../../src/client/index.js';
import type { Violation } from './invariants.js';

/** Multiplies every randomized size: 1 = the CI size (default), 10 = `npm run test:soak`. */
export const FAULT_SCALE = Number(process.env.FAULT_SCALE ?? 1);
export const scaled = (n: number) => Math.max(1, Math.round(n * FAULT_SCALE));

export class FaultSummary {
  schedules = 0;
  clients = 0;
  readonly faults: Record<string, number> = {};
  readonly violations: Violation[] = [];
  /** Milliseconds from the last fault to convergence, one per client and schedule. */
  readonly convergeMs: number[] = [];
  /** Clients that converged later than the spec bound (beacon, or backoff cap + beacon), though within the test's limit. */
  overSpecBound = 0;
  acknowledged = 0;
  lostAcknowledged = 0;
  readonly resyncs: Record<string, number> = {};
  reconnects = 0;
  deadLinks = 0;
  /** Server full-state encodings per version served, one figure per storm. */
  readonly stormEncodingsPerVersion: number[] = [];
  readonly extra: Record<string, number | string> = {};

  constructor(readonly suite: string) {}

  fault(kind: string, n = 1): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + n;
  }

  addClientStats(stats: StateSyncStats): void {
    for (const [reason, n] of Object.entries(stats.resyncs)) if (n) this.resyncs[reason] = (this.resyncs[reason] ?? 0) + n;
    this.reconnects += stats.reconnects;
    this.deadLinks += stats.deadLinks;
  }

  figures() {
    const sorted = [...this.convergeMs].sort((a, b) => a - b);
    const p99 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]! : null;
    return {
      suite: this.suite,
      scale: FAULT_SCALE,
      schedules: this.schedules,
      clients: this.clients,
      faults: this.faults,
      violations: this.violations.length,
      violationsByInvariant: Object.fromEntries([...new Set(this.violations.map((v) => v.invariant))].map((i) => [i, this.violations.filter((v) => v.invariant === i).length])),
      convergeMaxMs: sorted.at(-1) ?? null,
      convergeP99Ms: p99,
      convergeSamples: sorted.length,
      overSpecBound: this.overSpecBound,
      acknowledged: this.acknowledged,
      lostAcknowledged: this.lostAcknowledged,
      resyncs: this.resyncs,
      reconnects: this.reconnects,
      deadLinks: this.deadLinks,
      stormEncodingsPerVersion: this.stormEncodingsPerVersion,
      ...this.extra,
    };
  }

  print(): void {
    const f = this.figures();
    console.log(`fault summary ${JSON.stringify(f, null, 1).replace(/\n\s*/g, ' ')}`);
    if (this.violations.length) console.log(this.violations.slice(0, 20).map((v) => `  ${v.invariant} [${v.client}] ${v.message}`).join('\n'));
    if (process.env.FAULT_SUMMARY_FILE) appendFileSync(process.env.FAULT_SUMMARY_FILE, JSON.stringify(f) + '\n');
  }
}
