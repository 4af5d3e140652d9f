// The persistence contract of the state manager. A store keeps the epoch, the version counter,
// the change log, snapshots of the folded state and full command output. SQLite (one process)
// and PostgreSQL (several instances writing one version stream) implement it.
import type { Change } from '../../protocol/schema.js';

/** One committed change: the version it made. */
export interface ChangeRecord {
  version: number;
  change: Change;
  /** `JSON.stringify(change)`, when already encoded: the store and the delta frame reuse it. */
  json?: string;
}

/** One stored piece of a command's output: the version of the change that brought it. */
export interface OutputChunk {
  version: number;
  chunk: string;
}

/** What a store holds when opened: enough to rebuild the state by folding. */
export interface StoredState {
  epoch: string;
  version: number;
  /** The newest snapshot: the full state JSON at `version`. Every store has one (version 0 at creation). */
  snapshot: { version: number; stateJson: string };
  /** Every change after the snapshot, in version order, ending at `version`. */
  changes: ChangeRecord[];
}

export interface Store {
  /**
   * Opens or creates the store. `initialStateJson` is the state of a new store at version 0.
   * Throws StoreError when an existing store cannot be read: never replaces it silently.
   */
  open(initialStateJson: string): Promise<StoredState>;
  /**
   * Commits the records in one transaction: appends them to the change log, sets the version
   * counter to the last one, appends command output. Versions must continue the counter
   * exactly; the store refuses anything else. Resolves only once durable. A shared store whose
   * counter another writer moved rejects with `StoreError('store_conflict')`: the caller
   * catches up with `readChanges` and tries again.
   */
  commit(records: readonly ChangeRecord[]): Promise<void>;
  /** Every change after `version`, in version order (for catching up with other writers). */
  readChanges(afterVersion: number): Promise<ChangeRecord[]>;
  /**
   * Shared stores only: calls `onCommit` (best effort, at least once after each commit by any
   * writer, possibly late or coalesced) so the caller can `readChanges`. Returns the unsubscribe.
   */
  watch?(onCommit: () => void): () => void;
  /** Records the full state at `version` and prunes what no restart needs any more. */
  saveSnapshot(version: number, stateJson: string): Promise<void>;
  /**
   * A command's output in the order it arrived: at most `maxChunks` chunks after the one stored at
   * `afterVersion` (0 for the first). Pages, so a large log is never built as one string.
   */
  readCommandOutput(commandId: string, afterVersion: number, maxChunks: number): Promise<OutputChunk[]>;
  /** Bytes (UTF-8) of output stored for each of `commandIds` that has any. */
  commandOutputBytes(commandIds: readonly string[]): Promise<Map<string, number>>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(
    readonly code: 'store_unreadable' | 'store_locked' | 'store_corrupt' | 'store_commit_failed' | 'store_conflict' | 'store_closed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/**
 * The change log read back after `afterVersion` must go on from it without a hole: every store
 * checks what it reads with this, so a damaged log is refused instead of folded wrong.
 */
export function checkContinuous(records: ReadonlyArray<{ version: number }>, afterVersion: number, where: string): void {
  let expected = afterVersion + 1;
  for (const { version } of records) {
    if (version !== expected) throw new StoreError('store_corrupt', `${where}: change log jumps from version ${expected - 1} to ${version}`);
    expected++;
  }
}
