// The one door command output comes in by, whatever carries it (the HTTP API, the agent socket):
// each writer over HTTP (a token or a user) may send so many bytes a second, and each
// command's stored log is cut at a byte cap, with a line in the log saying where, while the
// command itself goes on. What passes becomes a `command_progress` change. It counts the bytes
// every command has stored from the committed changes (its own and other instances'), seeded
// from the store at start for commands that were already running. Output is the first sign of
// an agent at work: the first chunk of a `pending` command makes it `running` in the same commit.
import type { Change } from '../protocol/index.js';
import { isTerminalCommandStatus } from '../protocol/index.js';
import type { StateManager } from './state-manager.js';
import { TokenBucket } from './token-bucket.js';

export interface OutputIntakeOptions {
  /** Bytes (UTF-8) of output kept per command; the rest is dropped after a marker line. */
  maxBytesPerCommand: number;
  /** Sustained bytes per second one writer may send. */
  bytesPerSecond: number;
  now?: () => number;
}

/** What became of one chunk. */
export interface OutputAccepted {
  /** The version at which what was kept is visible (the current one when nothing was). */
  version: number;
  /** Bytes of the chunk that were kept. */
  kept: number;
  /** The command's log has reached the cap: this chunk, or what follows it, is not kept. */
  cut: boolean;
}

/** A writer went over its rate; nothing was taken. Retry after `retryAfterMs`. */
export class OutputRateLimitedError extends Error {
  constructor(
    readonly retryAfterMs: number,
    bytesPerSecond: number,
  ) {
    super(`too much command output from this token or user: at most ${bytesPerSecond} bytes per second; slow down`);
    this.name = 'OutputRateLimitedError';
  }
}

interface Ledger {
  /** Bytes in committed changes. */
  stored: number;
  /** Bytes admitted and on their way to a commit, so concurrent chunks cannot both pass the cap. */
  pending: number;
}

/** Writers remembered at once; idle ones (full buckets) are forgotten first. */
const MAX_WRITERS = 10_000;

export function cutMarker(maxBytes: number): string {
  return `\n[nixfleet: output cut at ${maxBytes} bytes (NIXFLEET_OUTPUT_MAX_BYTES); the command goes on, its further output is not kept]\n`;
}

export class OutputIntake {
  private readonly ledgers = new Map<string, Ledger>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly now: () => number;
  /** A burst of two seconds' worth, and never less than one full request body. */
  private readonly capacity: number;
  private readonly marker: string;
  private unsubscribe: (() => void) | null = null;

  private constructor(
    private readonly manager: StateManager,
    private readonly options: OutputIntakeOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.capacity = Math.max(2 * options.bytesPerSecond, 1024 * 1024);
    this.marker = cutMarker(options.maxBytesPerCommand);
  }

  /** Counts the output of every running command, then follows every commit. */
  static async open(manager: StateManager, options: OutputIntakeOptions): Promise<OutputIntake> {
    const intake = new OutputIntake(manager, options);
    // Subscribed before the store is read: a chunk committed in between is counted twice, which
    // can only cut a log early by one chunk, never let it past the cap.
    intake.unsubscribe = manager.subscribe(({ change }) => intake.follow(change));
    const running = [...manager.state.commands.values()].filter((c) => !isTerminalCommandStatus(c.status)).map((c) => c.id);
    if (running.length > 0) {
      for (const [id, bytes] of await manager.commandOutputBytes(running)) intake.ledger(id).stored += bytes;
    }
    return intake;
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /**
   * Takes one chunk of a command's output from `writer` (null: an agent session, whose lines
   * are batched and cannot be told to retry; the cap still bounds what it stores). `seq` is the
   * agent's number of the chunk's last line. Throws OutputRateLimitedError over the writer's
   * rate, and whatever `StateManager.apply` throws (unknown or finished command).
   */
  async append(writer: string | null, commandId: string, output: string, seq?: number): Promise<OutputAccepted> {
    const bytes = Buffer.byteLength(output);
    if (writer !== null) this.take(writer, bytes);
    const command = this.manager.state.commands.get(commandId);
    if (!command || isTerminalCommandStatus(command.status)) {
      // Let the manager refuse it with the right error; nothing to count.
      return { version: await this.manager.apply({ type: 'command_progress', id: commandId, output }), kept: bytes, cut: false };
    }
    const ledger = this.ledger(commandId);
    const used = ledger.stored + ledger.pending;
    const room = this.options.maxBytesPerCommand - used;
    // Past the cap the marker is in (or on its way): drop the chunk, the command goes on.
    if (room < 0) return { version: this.manager.version, kept: 0, cut: true };
    let text = output;
    let kept = bytes;
    if (bytes > room) {
      const head = prefixWithin(output, room);
      kept = Buffer.byteLength(head);
      text = head + this.marker;
    }
    const admitted = Buffer.byteLength(text);
    ledger.pending += admitted;
    const progress: Change = { type: 'command_progress', id: commandId, output: text, ...(seq !== undefined ? { seq } : {}) };
    const changes: Change[] =
      command.status === 'pending' ? [{ type: 'command_updated', id: commandId, fields: { status: 'running', started_at: new Date(this.now()).toISOString() } }, progress] : [progress];
    try {
      const version = await this.manager.applyAll(changes);
      return { version, kept, cut: kept < bytes };
    } finally {
      ledger.pending -= admitted;
    }
  }

  private follow(change: Change): void {
    if (change.type === 'command_progress') this.ledger(change.id).stored += Buffer.byteLength(change.output);
    else if (change.type === 'command_finished') this.ledgers.delete(change.id);
  }

  private ledger(commandId: string): Ledger {
    let ledger = this.ledgers.get(commandId);
    if (!ledger) this.ledgers.set(commandId, (ledger = { stored: 0, pending: 0 }));
    return ledger;
  }

  /** A token bucket per writer: refuses without taking anything when the chunk does not fit. */
  private take(writer: string, bytes: number): void {
    let bucket = this.buckets.get(writer);
    if (!bucket) {
      bucket = new TokenBucket(this.capacity, this.options.bytesPerSecond, this.now);
      this.buckets.set(writer, bucket);
      this.forgetIdleWriters();
    }
    const waitMs = bucket.take(bytes);
    if (waitMs > 0) throw new OutputRateLimitedError(waitMs, this.options.bytesPerSecond);
  }

  private forgetIdleWriters(): void {
    if (this.buckets.size <= MAX_WRITERS) return;
    for (const [key, bucket] of this.buckets) if (bucket.full) this.buckets.delete(key);
    // All busy: forget the oldest, which at worst gives one writer a fresh burst.
    if (this.buckets.size > MAX_WRITERS) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

const encoder = new TextEncoder();

/** The longest prefix of `text` that is at most `maxBytes` of UTF-8, cut between characters. */
export function prefixWithin(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  const { read } = encoder.encodeInto(text, new Uint8Array(maxBytes));
  return text.slice(0, read);
}
