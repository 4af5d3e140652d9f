// The oracle for the invariant checkers: every change an in-process server commits, and its full
// state after each, keyed by `epoch:version`. One oracle can follow several servers (restarts).
import { toFullState, type FleetState } from '../../src/protocol/index.js';
import type { StateManager } from '../../src/server/state-manager.js';
import type { Oracle } from './invariants.js';

export function newOracle(): Oracle {
  return { changes: new Map(), states: new Map() };
}

/** Records `manager`'s current state and every later commit into `oracle`; returns the detach function. */
export function follow(oracle: Oracle, manager: StateManager): () => void {
  oracle.states.set(`${manager.epoch}:${manager.version}`, JSON.stringify(toFullState(manager.state as FleetState)));
  return manager.subscribe((record) => {
    const k = `${manager.epoch}:${record.version}`;
    oracle.changes.set(k, JSON.stringify(record.change));
    oracle.states.set(k, JSON.stringify(toFullState(manager.state as FleetState)));
  });
}
