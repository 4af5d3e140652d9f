// One run of one op, from start to its delivered result: its numbered output, how far that
// output got on the current socket, and its final `status` with what is known of its delivery.
// The agent keeps the last run until the next one starts, so a reconnect can finish delivering it.
import type { StatusPayload } from '../protocol/agent-wire.js';
import type { RunningOp } from './op-runner.js';
import { OutputBuffer } from './output-buffer.js';

export class CommandRun {
  readonly output: OutputBuffer;
  handle: RunningOp | null = null;
  /** Highest seq handed to the current socket. */
  sentSeq = 0;
  /** Highest seq ever handed to a socket (what an old server may have got). */
  handedSeq = 0;
  /** The start heartbeat went out (or was due): lines may follow it. */
  announced = false;
  /** Set once the op ended: the `status` to deliver. */
  status: StatusPayload | null = null;
  /** The status was handed to a socket at least once. */
  statusHanded = false;
  /** A `registered` no longer named this op: the server has the result; never resend it. */
  statusConfirmed = false;
  /** Exit code for the restart hook once the status is out (a successful switch), else null. */
  restartCode: number | null = null;
  stopRequested = false;
  warnedAboutDroppedLines = false;
  readonly ended: Promise<void>;
  private markEnded!: () => void;

  constructor(
    readonly op: string,
    bufferLines: number,
    /** The server's id of the command, when it sent one (extension). */
    readonly commandId: string | null = null,
  ) {
    this.output = new OutputBuffer(bufferLines);
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
  }

  get pid(): number | null {
    return this.handle?.pid ?? null;
  }

  get finished(): boolean {
    return this.status !== null;
  }

  finish(status: StatusPayload): void {
    this.status = status;
    this.markEnded();
  }
}
