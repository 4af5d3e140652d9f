// The demo operator's live copy of the fleet, held as a dashboard holds it: a StateSync client on
// /ws with the operator's token. The operator's loops read `state`; a pipeline waits here for the
// commands it started to end (the agents run them); a removed host is announced.
import WebSocket from 'ws';
import { StateSync, type ChangeEvent, type WebSocketConstructorLike } from '../client/index.js';
import { isTerminalCommandStatus, type COMMAND_TERMINAL_STATUSES } from '../protocol/constants.js';
import type { FleetState } from '../protocol/fleet-state.js';

/**
 * How a command ended: its terminal status; `gone` when it left the state unseen (finished and
 * trimmed while the view was resyncing); `stopped` when the demo stopped waiting.
 */
export type CommandEnd = (typeof COMMAND_TERMINAL_STATUSES)[number] | 'gone' | 'stopped';

interface Waiter {
  /** The version at which the command became visible: a view past it without the command lost it. */
  visibleAt: number;
  resolve(end: CommandEnd): void;
}

export class FleetView {
  private readonly sync: StateSync;
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly removedListeners = new Set<(hostId: string) => void>();
  private waiting = true;

  constructor(wsUrl: string, token: string) {
    // `ws` takes headers, a browser's WebSocket does not: bind the operator's token here.
    const Authenticated = class extends WebSocket {
      constructor(url: string) {
        super(url, { headers: { authorization: `Bearer ${token}` } });
      }
    } as unknown as WebSocketConstructorLike;
    this.sync = new StateSync({ url: wsUrl, WebSocket: Authenticated, page: null });
    this.sync.on('change', (event) => this.onChange(event));
  }

  /** Connects; resolves once the first state arrived, rejects after `timeoutMs` without one. */
  start(timeoutMs = 15_000): Promise<void> {
    this.sync.start();
    return new Promise((resolve, reject) => {
      if (this.sync.state !== null) return resolve();
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no fleet state from ${this.sync.status.status} /ws within ${timeoutMs / 1000} s (${this.sync.status.reason})`));
      }, timeoutMs);
      const off = this.sync.on('change', () => {
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** The fleet as last seen. Shared with the client: read it, never change it. */
  get state(): Readonly<FleetState> {
    const state = this.sync.state;
    if (state === null) throw new Error('FleetView.state read before start() resolved');
    return state;
  }

  onHostRemoved(listener: (hostId: string) => void): void {
    this.removedListeners.add(listener);
  }

  /** Resolves when the command ends. `visibleAt`: the version the API answered its creation with. */
  waitForEnd(commandId: string, visibleAt: number): Promise<CommandEnd> {
    if (!this.waiting) return Promise.resolve('stopped');
    return new Promise((resolve) => {
      const list = this.waiters.get(commandId) ?? [];
      list.push({ visibleAt, resolve });
      this.waiters.set(commandId, list);
      this.check(commandId);
    });
  }

  /** Every wait, now and later, resolves `stopped` (the demo stops). */
  stopWaiting(): void {
    this.waiting = false;
    for (const id of [...this.waiters.keys()]) this.settle(id, 'stopped');
  }

  close(): void {
    this.stopWaiting();
    this.removedListeners.clear();
    this.sync.close();
  }

  private onChange(event: ChangeEvent): void {
    if (event.kind === 'snapshot') {
      for (const id of [...this.waiters.keys()]) this.check(id);
      return;
    }
    const { change } = event;
    if (change.type === 'command_finished') this.settle(change.id, change.status);
    else if (change.type === 'host_removed') for (const listener of this.removedListeners) listener(change.id);
  }

  /** Settles the waits on a command the state shows ended, or no longer shows at a later version. */
  private check(commandId: string): void {
    const state = this.sync.state;
    if (state === null) return;
    const command = state.commands.get(commandId);
    if (command && isTerminalCommandStatus(command.status)) return this.settle(commandId, command.status as CommandEnd);
    if (command) return;
    const list = this.waiters.get(commandId) ?? [];
    const lost = list.filter((waiter) => this.sync.version >= waiter.visibleAt);
    if (lost.length === 0) return;
    for (const waiter of lost) waiter.resolve('gone');
    const rest = list.filter((waiter) => !lost.includes(waiter));
    if (rest.length > 0) this.waiters.set(commandId, rest);
    else this.waiters.delete(commandId);
  }

  private settle(commandId: string, end: CommandEnd): void {
    const list = this.waiters.get(commandId);
    if (!list) return;
    this.waiters.delete(commandId);
    for (const waiter of list) waiter.resolve(end);
  }
}
