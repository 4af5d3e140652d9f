// One agent's connection: the host its token is bound to, what it registered as, when it was
// last heard, and the output lines it sent that are not yet committed. Messages are handled one
// at a time in arrival order (a chain of promises), so a `status` can never overtake the output
// lines before it.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { WebSocket } from 'ws';
import type { ServerToAgent } from '../../protocol/agent-wire.js';
import type { Principal } from '../auth/roles.js';
import type { PublishMemory } from './heartbeat-changes.js';

/** Output lines of one command gathered into one `command_progress`. */
export interface OutputBatch {
  commandId: string;
  lines: string[];
  bytes: number;
  /** The agent's number of the last line in the batch, when it numbers them. */
  lastSeq: number | undefined;
}

let nextSessionId = 1;

/**
 * Backpressure: past this many messages waiting, the socket is paused (TCP then slows the agent:
 * the Go agent blocks in its write); below the low mark it reads again. So a flooding agent
 * costs bounded memory, not its whole backlog.
 */
const BACKLOG_HIGH = 256;
const BACKLOG_LOW = 32;
/** The chain yields to the event loop after this many messages, so one agent cannot stall it. */
const YIELD_EVERY = 64;

export class AgentSession {
  readonly id = nextSessionId++;
  /** Set by a valid `register`. */
  hostname: string | null = null;
  registeredAt = 0;
  /** The git commit the agent was built from, when it says (`source_commit`). */
  sourceCommit: string | null = null;
  lastHeardAt: number;
  /** The heartbeat interval the agent registered with. */
  intervalMs = 5_000;
  /** Replaced by a newer connection of the same host: its close must not mark the host offline. */
  replaced = false;
  closed = false;
  readonly publish: PublishMemory = { lastPublishedAt: 0, metricsPublishedAt: 0 };
  /** The command that was unfinished when it registered: reconciled by its first heartbeats. */
  reconcileCommandId: string | null = null;
  batch: OutputBatch | null = null;
  flushTimer: NodeJS.Timeout | null = null;
  /** The highest output `seq` taken for each command (committed or in the batch). */
  readonly seqTaken = new Map<string, number>();
  /** Pids the server already told to stop, so a repeated heartbeat does not repeat it. */
  readonly stopsSent = new Set<number>();
  readonly timers = new Set<NodeJS.Timeout>();
  private chain: Promise<void> = Promise.resolve();
  /** Messages received and not yet handled. */
  private backlog = 0;
  private handledSinceYield = 0;
  /** Times the socket was paused for backpressure (stats, tests). */
  pauses = 0;

  constructor(
    readonly socket: WebSocket,
    readonly principal: Extract<Principal, { kind: 'token' }>,
    /** The host the token reports for. */
    readonly hostId: string,
    now: number,
  ) {
    this.lastHeardAt = now;
  }

  get registered(): boolean {
    return this.hostname !== null;
  }

  /** `agent:<hostname>`: the actor of what this agent reports, in the event log. */
  get actor(): string {
    return `agent:${this.hostname ?? this.hostId}`;
  }

  /**
   * Runs `task` after every message before it; a failing task is reported, the chain goes on.
   * Pauses the socket while the backlog is deep and yields to the event loop now and then.
   */
  enqueue(task: () => Promise<void>, onError: (error: unknown) => void): void {
    this.backlog++;
    if (this.backlog > BACKLOG_HIGH && !this.socket.isPaused && !this.closed) {
      this.pauses++;
      this.socket.pause();
    }
    this.chain = this.chain
      .then(async () => {
        if (++this.handledSinceYield >= YIELD_EVERY) {
          this.handledSinceYield = 0;
          await yieldToLoop();
        }
        await task();
      })
      .catch(onError)
      .finally(() => {
        this.backlog--;
        if (this.backlog <= BACKLOG_LOW && this.socket.isPaused) this.socket.resume();
      });
  }

  /** Paused for backpressure: silence now is ours, not the agent's. */
  get paused(): boolean {
    return this.socket.isPaused;
  }

  /** Resolves when every message received so far is handled. */
  settled(): Promise<void> {
    return this.chain;
  }

  send<T extends keyof ServerToAgent>(type: T, payload: ServerToAgent[T]): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify({ type, payload }));
  }

  later(ms: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      task();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }
}
