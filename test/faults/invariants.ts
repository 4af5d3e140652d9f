// The guarantees of docs/PROTOCOL.md as named checkers over one client's recorded history (every
// delta and snapshot StateSync applied, with epoch and version) and an oracle of what the server
// committed. Each returns violations with a message; an empty list means the invariant held.
import { isDeepStrictEqual } from 'node:util';

export type InvariantName = 'Ordered' | 'Unique' | 'Gap-free' | 'Atomic' | 'Epoch safety' | 'Convergence' | 'Durability';
export const INVARIANTS: readonly InvariantName[] = ['Ordered', 'Unique', 'Gap-free', 'Atomic', 'Epoch safety', 'Convergence', 'Durability'];

export interface Violation {
  invariant: InvariantName;
  client: string;
  message: string;
}

/** One `change` event of StateSync, with the client's whole state right after it. */
export interface Applied {
  kind: 'delta' | 'snapshot';
  epoch: string;
  version: number;
  /** The delta's change as JSON (deltas only). */
  changeJson?: string;
  /** Snapshots: whether the epoch changed with it. */
  epochChanged?: boolean;
  /** The client's version and state (toFullState JSON) when the event was emitted; absent when not recorded. */
  stateVersion?: number;
  stateJson?: string;
}

export interface History {
  client: string;
  entries: Applied[];
}

/** What the server committed, keyed by `epoch:version`. Missing keys are not checked. */
export interface Oracle {
  changes: Map<string, string>;
  states: Map<string, string>;
}

const key = (epoch: string, version: number) => `${epoch}:${version}`;

function sameJson(a: string, b: string): boolean {
  return a === b || isDeepStrictEqual(JSON.parse(a), JSON.parse(b));
}

/** Ordered: within one epoch the versions a client applies strictly increase (a snapshot may repeat its version, never go back). */
export function checkOrdered(h: History): Violation[] {
  const out: Violation[] = [];
  let prev: Applied | null = null;
  for (const e of h.entries) {
    if (prev && prev.epoch === e.epoch) {
      const bad = e.kind === 'delta' ? e.version <= prev.version : e.version < prev.version;
      if (bad) out.push({ invariant: 'Ordered', client: h.client, message: `${e.kind} v${e.version} after v${prev.version} in epoch ${e.epoch}` });
    }
    prev = e;
  }
  return out;
}

/** Unique: no (epoch, version) is applied twice, as a delta or as a delta already inside a snapshot. */
export function checkUnique(h: History): Violation[] {
  const out: Violation[] = [];
  const seen = new Set<string>();
  const held = new Map<string, number>(); // highest version held per epoch
  for (const e of h.entries) {
    if (e.kind === 'delta') {
      const k = key(e.epoch, e.version);
      if (seen.has(k)) out.push({ invariant: 'Unique', client: h.client, message: `delta ${k} applied twice` });
      else if ((held.get(e.epoch) ?? -1) >= e.version) out.push({ invariant: 'Unique', client: h.client, message: `delta ${k} applied on a state already at v${held.get(e.epoch)}` });
      seen.add(k);
    }
    held.set(e.epoch, Math.max(held.get(e.epoch) ?? -1, e.version));
  }
  return out;
}

/** Gap-free: every delta continues the version it is applied to; only a snapshot may jump ahead. */
export function checkGapFree(h: History): Violation[] {
  const out: Violation[] = [];
  let prev: Applied | null = null;
  for (const e of h.entries) {
    if (e.kind === 'delta') {
      if (!prev) out.push({ invariant: 'Gap-free', client: h.client, message: `delta v${e.version} before any snapshot` });
      else if (prev.epoch !== e.epoch) out.push({ invariant: 'Gap-free', client: h.client, message: `delta v${e.version} of epoch ${e.epoch} applied to state of epoch ${prev.epoch}` });
      else if (e.version !== prev.version + 1) out.push({ invariant: 'Gap-free', client: h.client, message: `delta v${e.version} applied at v${prev.version}: ${e.version > prev.version + 1 ? 'skipped' : 'repeated'} versions` });
    }
    prev = e;
  }
  return out;
}

/**
 * Atomic: the delta at (epoch, v) is exactly the one change the server committed at v, and the
 * client's state after it is the server's state at the client's version (nothing split or merged).
 */
export function checkAtomic(h: History, oracle: Oracle): Violation[] {
  const out: Violation[] = [];
  for (const e of h.entries) {
    const expected = e.kind === 'delta' ? oracle.changes.get(key(e.epoch, e.version)) : undefined;
    if (expected !== undefined && e.changeJson !== undefined && !sameJson(expected, e.changeJson)) {
      out.push({ invariant: 'Atomic', client: h.client, message: `delta ${key(e.epoch, e.version)} is ${e.changeJson.slice(0, 120)}, the server committed ${expected.slice(0, 120)}` });
    }
    if (e.stateJson === undefined || e.stateVersion === undefined) continue;
    const state = oracle.states.get(key(e.epoch, e.stateVersion));
    if (state !== undefined && !sameJson(state, e.stateJson)) {
      out.push({ invariant: 'Atomic', client: h.client, message: `state after ${e.kind} ${key(e.epoch, e.version)} differs from the server's at v${e.stateVersion}` });
    }
  }
  return out;
}

/**
 * Epoch safety: a new epoch starts only with a snapshot that says so (never a delta), an epoch
 * left behind never comes back, and right after the switch the state is the new epoch's, exactly.
 */
export function checkEpochSafety(h: History, oracle?: Oracle): Violation[] {
  const out: Violation[] = [];
  const left = new Set<string>();
  let current: string | null = null;
  for (const e of h.entries) {
    if (e.epoch !== current) {
      if (left.has(e.epoch)) out.push({ invariant: 'Epoch safety', client: h.client, message: `returned to old epoch ${e.epoch}` });
      if (current !== null && (e.kind !== 'snapshot' || !e.epochChanged)) out.push({ invariant: 'Epoch safety', client: h.client, message: `epoch ${current} -> ${e.epoch} by a ${e.kind}${e.kind === 'snapshot' ? ' not flagged epochChanged' : ''}` });
      if (current !== null) left.add(current);
      current = e.epoch;
      const state = oracle && e.stateJson !== undefined && e.stateVersion !== undefined ? oracle.states.get(key(e.epoch, e.stateVersion)) : undefined;
      if (state !== undefined && !sameJson(state, e.stateJson!)) out.push({ invariant: 'Epoch safety', client: h.client, message: `state after switching to epoch ${e.epoch} is not the server's: something of the old epoch survived` });
    }
  }
  return out;
}

/** Every history invariant at once. */
export function checkHistory(h: History, oracle?: Oracle): Violation[] {
  return [...checkOrdered(h), ...checkUnique(h), ...checkGapFree(h), ...(oracle ? checkAtomic(h, oracle) : []), ...checkEpochSafety(h, oracle)];
}

export interface ConvergenceResult {
  client: string;
  /** Milliseconds from "faults stopped" until the client held the server's state, or null if never. */
  ms: number | null;
  /** The spec's bound for this client: one beacon, or backoff cap + one beacon if it had to reconnect. */
  boundMs: number;
  reconnected: boolean;
}

/**
 * Convergence: once faults stop, the client's state deep-equals the server's full state at the same
 * version. `limitMs` is what the test tolerates (generous, the machine is shared); the spec bound
 * is reported separately.
 */
export function checkConvergence(results: readonly ConvergenceResult[], limitMs: number): Violation[] {
  return results
    .filter((r) => r.ms === null || r.ms > limitMs)
    .map((r) => ({ invariant: 'Convergence' as const, client: r.client, message: r.ms === null ? 'never converged' : `converged after ${r.ms} ms (limit ${limitMs} ms)` }));
}

export interface DurabilityInput {
  /** Changes the API acknowledged: the version it answered and the change it stands for. */
  acknowledged: Array<{ version: number; changeJson: string }>;
  epochBefore: string;
  /** Highest version any client applied before the crash (in epochBefore). */
  seenVersion: number;
  after: { epoch: string; version: number };
  /** The change log after restart, keyed by version. */
  log: Map<number, string>;
}

/** Durability: after the crash every acknowledged change is in the log at its version, the version did not go back, the epoch is the same. */
export function checkDurability(d: DurabilityInput, client = 'server'): Violation[] {
  const out: Violation[] = [];
  const v = (message: string): Violation => ({ invariant: 'Durability', client, message });
  if (d.after.epoch !== d.epochBefore) out.push(v(`epoch changed across the crash: ${d.epochBefore} -> ${d.after.epoch}`));
  if (d.after.version < d.seenVersion) out.push(v(`version after restart ${d.after.version} < v${d.seenVersion} already broadcast`));
  for (const ack of d.acknowledged) {
    const logged = d.log.get(ack.version);
    if (logged === undefined || !sameJson(logged, ack.changeJson)) out.push(v(`acknowledged v${ack.version} ${logged === undefined ? 'missing' : 'replaced by another change'} after restart`));
  }
  return out;
}

/** Counts acknowledged changes a durability check found lost. */
export function lostAcknowledged(violations: readonly Violation[]): number {
  return violations.filter((x) => x.invariant === 'Durability' && /^acknowledged/.test(x.message)).length;
}
