// A strict protocol observer for server tests: a real `ws` client that records every frame,
// folds init / full_state / delta with the shared reducer and notes every breach of the server's
// promises (a frame before init, a gap, a duplicate, an epoch change on one socket).
import WebSocket from 'ws';
import { applyChange, fromFullState, toFullState, type FleetState, type FullState, type ServerMessage } from '../../src/protocol/index.js';

export interface RecordedFrame {
  at: number;
  raw: string;
  message: ServerMessage;
}

export class SyncRecorder {
  readonly frames: RecordedFrame[] = [];
  readonly violations: string[] = [];
  /** Versions of the deltas applied, in order. */
  readonly deltaVersions: number[] = [];
  state: FleetState | null = null;
  epoch: string | null = null;
  version = -1;
  closeCode: number | null = null;
  closeReason = '';
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => this.receive(data.toString(), isBinary));
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.notify();
    });
    ws.on('error', () => {});
  }

  static async connect(url: string, options: WebSocket.ClientOptions = {}): Promise<SyncRecorder> {
    const ws = new WebSocket(url, options);
    const recorder = new SyncRecorder(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return recorder;
  }

  get fullState(): FullState {
    if (!this.state) throw new Error('no state yet');
    return toFullState(this.state);
  }

  messages<T extends ServerMessage['type']>(type: T): Extract<ServerMessage, { type: T }>[] {
    return this.frames.map((f) => f.message).filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves when `predicate` holds, checked after every frame; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what} (version ${this.version}, ${this.frames.length} frames)`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  waitForVersion(version: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.version >= version, timeoutMs, `version ${version}`);
  }

  waitForClose(timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.closeCode !== null, timeoutMs, 'close');
  }

  close(): void {
    this.ws.close();
  }

  private receive(raw: string, isBinary: boolean): void {
    if (isBinary) this.violations.push('binary frame from server');
    const message = JSON.parse(raw) as ServerMessage;
    this.frames.push({ at: Date.now(), raw, message });
    if (message.type !== 'error') {
      if (this.epoch === null && message.type !== 'init') this.violations.push(`${message.type} v${message.version} before init`);
      if (this.epoch !== null && message.epoch !== this.epoch) this.violations.push(`epoch changed on one socket: ${this.epoch} -> ${message.epoch}`);
    }
    switch (message.type) {
      case 'init':
      case 'full_state':
        if (message.type === 'init' && this.epoch !== null) this.violations.push('second init on one socket');
        if (message.version < this.version) this.violations.push(`${message.type} v${message.version} behind local v${this.version}`);
        this.epoch = message.epoch;
        this.state = fromFullState(message.payload);
        this.version = message.version;
        break;
      case 'delta':
        if (this.state === null) break;
        if (message.version !== this.version + 1) {
          this.violations.push(`delta v${message.version} after v${this.version}`);
          break;
        }
        applyChange(this.state, message.payload);
        this.version = message.version;
        this.deltaVersions.push(message.version);
        break;
      case 'sync':
        if (message.version < this.version) this.violations.push(`sync v${message.version} behind local v${this.version}`);
        break;
      case 'error':
        break;
    }
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
