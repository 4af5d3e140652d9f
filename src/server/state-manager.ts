// The one writer. Every mutation of the fleet goes through `apply`: validate, commit to the store
// in one transaction with the next version, and only then fold it into the committed state and
// hand the delta, encoded once, to the subscribers, strictly in version order. Changes arriving
// in one event-loop turn share one transaction (group commit). Owns no sockets.
import {
  ChangeSchema,
  applyChange,
  applyValidChange,
  checkAdmission,
  checkChange,
  cloneState,
  emptyState,
  encodeDeltaJson,
  encodeSnapshotFrame,
  encodeSync,
  fromFullState,
  toFullState,
  type Change,
  type FleetState,
  type FullState,
  type Limits,
  type SnapshotFrameType,
} from '../protocol/index.js';
import { maybeCrash } from './fault-injection.js';
import { silentLogger, type Logger } from './logger.js';
import { StoreError, type ChangeRecord, type OutputChunk, type Store } from './store/store.js';

/** Times a batch is re-staged after losing the race for the next version to another instance. */
const MAX_CONFLICT_RETRIES = 20;

/** An encoded frame, shared by every client it is sent to. */
export interface Frame {
  version: number;
  data: Buffer;
}

/** Called synchronously after each commit, once per change, in version order. */
export type CommitListener = (record: ChangeRecord, delta: Frame) => void;
export type BatchListener = (deltas: readonly Frame[]) => void;

/** A change that was not applied: invalid shape, unknown entity or a conflict with the state. */
export class ChangeRejectedError extends Error {
  constructor(
    readonly code: 'invalid' | 'not_found' | 'conflict' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'ChangeRejectedError';
  }
}

export interface StateManagerOptions {
  /** Trimming limits; when they differ from the stored state's, a `limits_changed` is applied. */
  limits: Limits;
  /** A snapshot is saved every N versions, bounding the replay on restart. */
  snapshotEvery?: number;
  /** Most changes committed in one transaction. */
  maxBatch?: number;
  logger?: Logger;
}

interface Pending {
  changes: Change[];
  resolve: (version: number) => void;
  reject: (error: Error) => void;
}

interface SnapshotCache {
  version: number;
  stateJson: string;
  frames: Partial<Record<SnapshotFrameType, Frame>>;
}

export class StateManager {
  readonly epoch: string;
  private currentVersion: number;
  /** The state at `version`: what init, full_state and every subscriber see. */
  private readonly committed: FleetState;
  /** The committed state plus the changes of the batch being committed; validation runs here. */
  private working: FleetState;
  private readonly listeners = new Set<CommitListener>();
  private readonly batchListeners = new Set<BatchListener>();
  private readonly queue: Pending[] = [];
  private drainPromise: Promise<void> | null = null;
  private scheduled = false;
  private closed = false;
  private snapshotCache: SnapshotCache | null = null;
  private syncCache: Frame | null = null;
  private lastSnapshotVersion: number;
  private readonly snapshotEvery: number;
  private readonly maxBatch: number;
  private readonly logger: Logger;
  /** Counters for tests, metrics and benchmarks. */
  readonly stats = { commits: 0, changes: 0, fullStateEncodings: 0, rejected: 0, commitFailures: 0, conflicts: 0, external: 0 };
  /** The store is shared with other instances (it can be watched): versions may come from them. */
  private readonly shared: boolean;
  private catchUpWanted = false;
  /** Callers of `caughtUp` waiting for the next catch-up to finish. */
  private catchUpWaiters: Array<() => void> = [];
  private unwatch: (() => void) | null = null;

  private constructor(private readonly store: Store, epoch: string, version: number, state: FleetState, snapshotVersion: number, options: StateManagerOptions) {
    this.epoch = epoch;
    this.currentVersion = version;
    this.committed = state;
    this.working = cloneState(state);
    this.lastSnapshotVersion = snapshotVersion;
    this.snapshotEvery = options.snapshotEvery ?? 1000;
    this.maxBatch = options.maxBatch ?? 1000;
    this.logger = options.logger ?? silentLogger;
    this.shared = typeof store.watch === 'function';
  }

  /** Opens the store and rebuilds the state: the newest snapshot plus the changes after it. */
  static async open(store: Store, options: StateManagerOptions): Promise<StateManager> {
    const stored = await store.open(JSON.stringify(toFullState(emptyState(options.limits))));
    let state: FleetState;
    try {
      state = fromFullState(JSON.parse(stored.snapshot.stateJson) as FullState);
    } catch (error) {
      throw new StoreError('store_corrupt', `snapshot at version ${stored.snapshot.version} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    for (const record of stored.changes) applyChange(state, record.change, true);
    const manager = new StateManager(store, stored.epoch, stored.version, state, stored.snapshot.version, options);
    manager.unwatch = store.watch?.(() => manager.requestCatchUp()) ?? null;
    if (!sameLimits(state.limits, options.limits)) {
      manager.logger.info('trimming limits changed; applying them as a versioned change', { from: state.limits, to: options.limits });
      await manager.apply({ type: 'limits_changed', limits: { ...options.limits } });
    }
    return manager;
  }

  get version(): number {
    return this.currentVersion;
  }

  /** The committed state. Read-only: mutate only through `apply`. */
  get state(): Readonly<FleetState> {
    return this.committed;
  }

  /** Applies one change; resolves with the version at which it is visible once committed. */
  apply(change: Change): Promise<number> {
    return this.applyAll([change]);
  }

  /**
   * Applies changes atomically: all are committed in one transaction with consecutive versions,
   * or none is. Resolves with the version of the last one.
   */
  applyAll(changes: readonly Change[]): Promise<number> {
    if (this.closed) return Promise.reject(new ChangeRejectedError('closed', 'the state manager is closed'));
    if (changes.length === 0) return Promise.reject(new ChangeRejectedError('invalid', 'no changes to apply'));
    const parsed: Change[] = [];
    for (const change of changes) {
      const result = ChangeSchema.safeParse(change);
      if (!result.success) {
        this.stats.rejected++;
        const issue = result.error.issues[0];
        const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
        return Promise.reject(new ChangeRejectedError('invalid', `invalid change: ${where}${issue?.message ?? 'malformed'}`));
      }
      parsed.push(result.data);
    }
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ changes: parsed, resolve, reject });
      this.schedule();
    });
  }

  /** Registers a listener for committed changes; returns the function that removes it. */
  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Subscribes to committed batches: each call gets the deltas of one commit, in version order,
   * after the per-change listeners saw them. At that moment the state is at the last of them.
   */
  subscribeBatches(listener: BatchListener): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  /** The full state at the current version, encoded once per version and shared. */
  stateJson(): string {
    return this.currentSnapshot().stateJson;
  }

  /** An `init` or `full_state` frame at the current version, encoded once per version. */
  snapshotFrame(type: SnapshotFrameType): Frame {
    const cache = this.currentSnapshot();
    let frame = cache.frames[type];
    if (!frame) {
      frame = { version: cache.version, data: Buffer.from(encodeSnapshotFrame(type, this.epoch, cache.version, cache.stateJson)) };
      cache.frames[type] = frame;
    }
    return frame;
  }

  /** The `sync` beacon frame at the current version. */
  syncFrame(): Frame {
    if (this.syncCache?.version !== this.currentVersion) {
      this.syncCache = { version: this.currentVersion, data: Buffer.from(encodeSync(this.epoch, this.currentVersion)) };
    }
    return this.syncCache;
  }

  /** A page of a command's stored output (see Store.readCommandOutput). */
  readCommandOutput(commandId: string, afterVersion: number, maxChunks: number): Promise<OutputChunk[]> {
    return this.store.readCommandOutput(commandId, afterVersion, maxChunks);
  }

  /** Bytes of output stored for each of these commands that has any. */
  commandOutputBytes(commandIds: readonly string[]): Promise<Map<string, number>> {
    return this.store.commandOutputBytes(commandIds);
  }

  /**
   * With a shared store, resolves once what other instances committed before this call is in
   * the state: a decision made on the state (is this host online?) then sees their writes. With
   * a store of its own the state is always current.
   */
  caughtUp(): Promise<void> {
    if (!this.shared || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.catchUpWaiters.push(resolve);
      this.requestCatchUp();
    });
  }

  /** Another instance committed: read and broadcast its changes, in order with ours. */
  private requestCatchUp(): void {
    if (this.closed) return;
    this.catchUpWanted = true;
    this.schedule();
  }

  /** Commits what is queued, saves a snapshot and closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    // Let every change accepted before close commit, whether its drain started or is scheduled.
    while (this.scheduled || this.drainPromise) {
      if (this.drainPromise) await this.drainPromise;
      else await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.currentVersion > this.lastSnapshotVersion) await this.saveSnapshot();
    await this.store.close();
  }

  private currentSnapshot(): SnapshotCache {
    if (this.snapshotCache?.version !== this.currentVersion) {
      this.stats.fullStateEncodings++;
      this.snapshotCache = { version: this.currentVersion, stateJson: JSON.stringify(toFullState(this.committed)), frames: {} };
    }
    return this.snapshotCache;
  }

  private schedule(): void {
    if (this.scheduled || this.drainPromise) return;
    this.scheduled = true;
    // setImmediate, not a microtask: every request handled in this turn of the event loop joins
    // the same transaction.
    setImmediate(() => {
      this.scheduled = false;
      this.drainPromise = this.drain().finally(() => {
        this.drainPromise = null;
        if (this.queue.length > 0 || this.catchUpWanted) this.schedule();
      });
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.catchUpWanted) {
      if (this.catchUpWanted) {
        this.catchUpWanted = false;
        const waiters = this.catchUpWaiters.splice(0);
        await this.catchUp();
        for (const resolve of waiters) resolve();
        continue;
      }
      await this.commitBatch(this.queue.splice(0, this.maxBatch));
    }
  }

  /**
   * Stages, commits and publishes one batch. With a shared store our state may be behind other
   * instances: a refusal is re-checked once after catching up, and a commit that lost the race
   * for the next version catches up and is staged again (so it is validated against what the
   * others committed, and versions stay one stream).
   */
  private async commitBatch(batch: Pending[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { accepted, rejected, records } = this.stage(batch);
      if (this.shared && attempt === 0 && rejected.length > 0) {
        await this.catchUp();
        continue;
      }
      for (const [pending, error] of rejected) {
        this.stats.rejected++;
        pending.reject(error);
      }
      if (records.length === 0) return;
      try {
        maybeCrash('before_commit');
        await this.store.commit(records);
      } catch (error) {
        this.working = cloneState(this.committed);
        if (error instanceof StoreError && error.code === 'store_conflict' && attempt < MAX_CONFLICT_RETRIES) {
          this.stats.conflicts++;
          await this.catchUp();
          batch = accepted;
          continue;
        }
        this.stats.commitFailures++;
        this.logger.error('commit failed; the changes were not applied', { error: (error as Error).message, versions: `${records[0]!.version}..${records.at(-1)!.version}` });
        const failure = error instanceof StoreError ? error : new StoreError('store_commit_failed', (error as Error).message, { cause: error });
        for (const pending of accepted) pending.reject(failure);
        return;
      }
      maybeCrash('after_commit');
      this.publish(records);
      let index = 0;
      for (const pending of accepted) {
        index += pending.changes.length;
        pending.resolve(records[index - 1]!.version);
      }
      if (this.currentVersion - this.lastSnapshotVersion >= this.snapshotEvery) await this.saveSnapshot();
      return;
    }
  }

  /** Applies and broadcasts what other instances committed since our version. */
  private async catchUp(): Promise<void> {
    try {
      const records = await this.store.readChanges(this.currentVersion);
      if (records.length > 0) {
        this.stats.external += records.length;
        this.publish(records);
      }
    } catch (error) {
      // The store is unreachable: keep serving the last state (it is still true at its
      // version); the next notification or poll tries again.
      this.logger.warn('catching up with the shared store failed', { error: (error as Error).message });
    }
    this.working = cloneState(this.committed);
  }

  /**
   * Validates each pending group against the working state and applies it there, assigning
   * versions. A group with a rejected change is undone whole and returned with its error.
   */
  private stage(batch: Pending[]): { accepted: Pending[]; rejected: Array<[Pending, ChangeRejectedError]>; records: ChangeRecord[] } {
    const accepted: Pending[] = [];
    const rejected: Array<[Pending, ChangeRejectedError]> = [];
    const records: ChangeRecord[] = [];
    for (const pending of batch) {
      const before = records.length;
      let rejection: ChangeRejectedError | null = null;
      for (const change of pending.changes) {
        const problem = checkChange(this.working, change) ?? checkAdmission(this.working, change);
        if (problem) {
          rejection = new ChangeRejectedError(problem.code, problem.message);
          break;
        }
        // The change is the manager's own validated copy (zod builds new objects), never
        // mutated: both states share its entities instead of copying them (owned = true).
        applyValidChange(this.working, change, true);
        // Encoded once: the store writes this JSON and the delta frame wraps it.
        records.push({ version: this.currentVersion + records.length + 1, change, json: JSON.stringify(change) });
      }
      if (rejection) {
        if (records.length > before) {
          records.length = before;
          this.working = cloneState(this.committed);
          for (const record of records) applyValidChange(this.working, record.change, true);
        }
        rejected.push([pending, rejection]);
      } else {
        accepted.push(pending);
      }
    }
    return { accepted, rejected, records };
  }

  /**
   * After commit: fold into the committed state and hand each delta out, in version order, to
   * the per-change listeners, then the whole batch to the batch listeners (the hub: one socket
   * write per client per batch).
   */
  private publish(records: readonly ChangeRecord[]): void {
    this.stats.commits++;
    const deltas: Frame[] = [];
    for (const record of records) {
      applyChange(this.committed, record.change, true);
      this.currentVersion = record.version;
      this.stats.changes++;
      const json = record.json ?? JSON.stringify(record.change);
      const delta: Frame = { version: record.version, data: Buffer.from(encodeDeltaJson(this.epoch, record.version, json)) };
      deltas.push(delta);
      for (const listener of this.listeners) this.tell(() => listener(record, delta), record.version);
    }
    if (deltas.length === 0) return;
    for (const listener of this.batchListeners) this.tell(() => listener(deltas), deltas[0]!.version);
  }

  /** A listener that throws is logged; it must not stop the others or the writer. */
  private tell(call: () => void, version: number): void {
    try {
      call();
    } catch (error) {
      this.logger.error('commit listener failed', { error: (error as Error).message, version });
    }
  }

  private async saveSnapshot(): Promise<void> {
    const version = this.currentVersion;
    try {
      await this.store.saveSnapshot(version, this.stateJson());
      this.lastSnapshotVersion = version;
    } catch (error) {
      this.logger.warn('saving a snapshot failed; the change log still has every change', { error: (error as Error).message, version });
    }
  }
}

function sameLimits(a: Limits, b: Limits): boolean {
  return a.events === b.events && a.commands === b.commands && a.pipelines === b.pipelines && a.output_tail === b.output_tail;
}
