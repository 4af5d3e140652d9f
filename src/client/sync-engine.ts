// The client side of the protocol as a pure state machine: no socket, no timer, no clock. It
// takes server messages and says what happened (deltas applied, state replaced) and whether
// to ask for the full state. StateSync wires it to a WebSocket; tests drive it directly.
//
// Invariants (docs/PROTOCOL.md, "Rules for a client"):
//   E1 within an epoch, applied versions strictly increase by exactly one;
//   E2 a delta with version <= local is a duplicate and is dropped;
//   E3 a gap (version > local + 1) asks for get_state once; later deltas are kept and those
//      newer than the full state are applied after it;
//   E4 a sync whose epoch or version differs from local asks for get_state;
//   E5 a different epoch discards the local state: it is replaced, never merged;
//   E6 a delta whose change type this client does not know is neither applied nor skipped: it
//      asks for get_state once (like a gap), and the full state, at or past it, replaces the
//      state; deltas after it wait for that full state as in E3.
import { applyChange, fromFullState, type FleetState } from '../protocol/fleet-state.js';
import type { ServerMessage } from '../protocol/messages.js';
import type { Change } from '../protocol/schema.js';

export type ResyncReason = 'gap' | 'drift' | 'epoch' | 'behind' | 'unknown_change' | 'visibility' | 'pageshow' | 'online' | 'manual';

export interface AppliedDelta {
  change: Change;
  version: number;
}

export interface EngineResult {
  /** Deltas applied by this message, in version order. */
  applied: AppliedDelta[];
  /** Set when the state was replaced by this message (before `applied`, if any, were applied). */
  replaced: { source: 'init' | 'full_state'; version: number; epochChanged: boolean } | null;
  /** Set when the caller must send get_state now (never while one is pending). */
  resync: ResyncReason | null;
  /** Set when the server reported an error about one of our frames. */
  error: { code: string; message: string } | null;
}

export interface EngineCounters {
  deltasApplied: number;
  duplicatesDropped: number;
  snapshotsApplied: number;
  staleSnapshotsIgnored: number;
  resyncs: Record<ResyncReason, number>;
}

/** Most deltas kept while waiting for a full state; beyond it the oldest are dropped. */
const MAX_BUFFERED = 10_000;

export class SyncEngine {
  state: FleetState | null = null;
  epoch: string | null = null;
  version = -1;
  /** Why a get_state is outstanding, or null. */
  pendingResync: ResyncReason | null = null;
  private buffered: Array<{ version: number; change: Change }> = [];
  readonly counters: EngineCounters = {
    deltasApplied: 0,
    duplicatesDropped: 0,
    snapshotsApplied: 0,
    staleSnapshotsIgnored: 0,
    resyncs: { gap: 0, drift: 0, epoch: 0, behind: 0, unknown_change: 0, visibility: 0, pageshow: 0, online: 0, manual: 0 },
  };

  /**
   * @param ownsMessages Messages given to `receive` are the engine's from then on (StateSync
   *   parses each frame afresh): the state takes their entities without copying them. Leave it
   *   false when the caller keeps or reuses the messages it passes in.
   */
  constructor(private readonly ownsMessages = false) {}

  /** A new connection: nothing is pending on it, and its first frame will be an init. */
  connectionReset(): void {
    this.pendingResync = null;
    this.buffered = [];
  }

  /** Asks for the full state unless a request is already pending. */
  requestResync(reason: ResyncReason): ResyncReason | null {
    if (this.pendingResync !== null) return null;
    this.pendingResync = reason;
    this.counters.resyncs[reason]++;
    return reason;
  }

  receive(message: ServerMessage): EngineResult {
    const result: EngineResult = { applied: [], replaced: null, resync: null, error: null };
    switch (message.type) {
      case 'init':
        this.replace(message.epoch, message.version, message.payload, result, 'init');
        return result;
      case 'full_state':
        // Same epoch, older version: a reply overtaken by what we already applied (E1).
        if (message.epoch === this.epoch && message.version < this.version) {
          this.counters.staleSnapshotsIgnored++;
          this.pendingResync = null;
          return result;
        }
        this.replace(message.epoch, message.version, message.payload, result, 'full_state');
        return result;
      case 'delta':
        this.receiveDelta(message.epoch, message.version, message.payload, result);
        return result;
      case 'sync':
        // No state yet although the link is up: the init was lost. Beacons keep the watchdog quiet,
        // so without asking we would wait for an init that never comes.
        if (this.state === null) result.resync = this.requestResync('drift');
        else if (message.epoch !== this.epoch) result.resync = this.requestResync('epoch');
        else if (message.version > this.version) result.resync = this.requestResync('drift');
        else if (message.version < this.version) result.resync = this.requestResync('behind');
        return result;
      case 'error':
        result.error = { code: message.code, message: message.message };
        return result;
    }
  }

  /** E6: a delta at `version` whose change type is from a newer protocol. */
  receiveUnknownChange(epoch: string, version: number): EngineResult {
    const result: EngineResult = { applied: [], replaced: null, resync: null, error: null };
    if (this.state === null || epoch !== this.epoch) {
      result.resync = this.requestResync(this.state === null ? 'gap' : 'epoch');
    } else if (version <= this.version) {
      this.counters.duplicatesDropped++;
    } else {
      // Not buffered: nothing could apply it. The full state asked for is at or past it.
      result.resync = this.requestResync('unknown_change');
    }
    return result;
  }

  private receiveDelta(epoch: string, version: number, change: Change, result: EngineResult): void {
    if (this.state === null) {
      // Before any state: the init was lost; nothing to apply this to, so ask for the full state.
      result.resync = this.requestResync('gap');
      return;
    }
    if (epoch !== this.epoch) {
      // E5: our history is gone; only a full state of the new epoch can replace it.
      result.resync = this.requestResync('epoch');
      return;
    }
    if (version <= this.version) {
      this.counters.duplicatesDropped++;
      return;
    }
    if (this.pendingResync !== null || version > this.version + 1) {
      this.buffer(version, change);
      if (this.pendingResync === null) result.resync = this.requestResync('gap');
      return;
    }
    this.apply(version, change, result);
  }

  private replace(epoch: string, version: number, payload: Parameters<typeof fromFullState>[0], result: EngineResult, source: 'init' | 'full_state'): void {
    const epochChanged = epoch !== this.epoch;
    this.state = fromFullState(payload);
    this.epoch = epoch;
    this.version = version;
    this.pendingResync = null;
    this.counters.snapshotsApplied++;
    result.replaced = { source, version, epochChanged };
    // Deltas kept during the resync that are newer than the full state still apply (E3);
    // from another epoch nothing survives (E5).
    const kept = epochChanged ? [] : this.buffered.filter((d) => d.version > version);
    this.buffered = [];
    for (const delta of kept) {
      if (delta.version === this.version + 1) {
        this.apply(delta.version, delta.change, result);
      } else {
        this.buffered.push(delta);
      }
    }
    if (this.buffered.length > 0) result.resync = this.requestResync('gap');
  }

  private apply(version: number, change: Change, result: EngineResult): void {
    applyChange(this.state!, change, this.ownsMessages);
    this.version = version;
    this.counters.deltasApplied++;
    result.applied.push({ change, version });
  }

  /** Keeps a delta for after the full state, sorted and without duplicates. */
  private buffer(version: number, change: Change): void {
    const list = this.buffered;
    let i = list.length;
    while (i > 0 && list[i - 1]!.version > version) i--;
    if (i > 0 && list[i - 1]!.version === version) return;
    list.splice(i, 0, { version, change });
    if (list.length > MAX_BUFFERED) list.shift();
  }
}
