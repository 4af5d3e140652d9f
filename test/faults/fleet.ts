// A fleet of real StateSync clients (Node, `ws`) that record every applied delta and snapshot as
// a History, and wait for convergence with the server measuring how long it took.
import WebSocket from 'ws';
import { StateSync, type StateSyncOptions, type WebSocketConstructorLike } from '../../src/client/index.js';
import { toFullState, type FleetState } from '../../src/protocol/index.js';
import type { ConvergenceResult, History } from './invariants.js';

export interface Target {
  epoch: string;
  version: number;
  stateJson: string;
}

export interface FleetClient {
  tag: string;
  url: string;
  sync: StateSync;
  history: History;
  /** When the client last entered `connecting` (a reconnect), ms since epoch. */
  lastConnectingAt: number;
  /** Every status change with its time, to explain a slow convergence. */
  statuses: Array<{ at: number; status: string; reason: string }>;
}

export interface FleetOptions {
  /** Bearer headers, read at every (re)connect: a wiped store means a new token. */
  auth: () => Record<string, string>;
  /** Record the client's whole state after every event (for Atomic); off for big fleets. */
  recordStates?: boolean;
  client?: Partial<StateSyncOptions>;
}

export const stateJson = (state: Readonly<FleetState>) => JSON.stringify(toFullState(state as FleetState));

export class Fleet {
  readonly clients: FleetClient[] = [];

  constructor(private readonly options: FleetOptions) {
    const auth = options.auth;
    this.WebSocketImpl = class extends WebSocket {
      constructor(u: string) {
        super(u, { headers: auth() });
      }
    } as unknown as WebSocketConstructorLike;
  }

  /** Clients replaced by `reload`, with their histories (still to be checked) and stats. */
  readonly retired: FleetClient[] = [];
  private readonly WebSocketImpl: WebSocketConstructorLike;

  /** Starts `n` clients at `url` (tags `${prefix}0`…, passed as `?c=` so the fault proxy can aim at one). */
  add(url: string, n: number, prefix = 'c'): FleetClient[] {
    const added: FleetClient[] = [];
    for (let i = 0; i < n; i++) {
      const tag = `${prefix}${this.clients.length}`;
      const sep = url.includes('?') ? '&' : '?';
      const client = this.create(`${url}${sep}c=${tag}`, tag);
      this.clients.push(client);
      added.push(client);
    }
    return added;
  }

  /** A page reload: client `index` is closed and a new one (no state) starts with the same tag. */
  reload(index: number): FleetClient {
    const old = this.clients[index]!;
    this.retired.push(old);
    old.sync.close();
    const fresh = this.create(old.url, old.tag);
    this.clients[index] = fresh;
    return fresh;
  }

  private create(url: string, tag: string): FleetClient {
    const sync = new StateSync({ url, WebSocket: this.WebSocketImpl, page: null, ...this.options.client });
    const client: FleetClient = { tag, url, sync, history: { client: `${tag}#${this.retired.filter((r) => r.tag === tag).length}`, entries: [] }, lastConnectingAt: 0, statuses: [] };
    sync.on('status', (s) => {
      client.statuses.push({ at: Date.now(), ...s });
      if (s.status === 'connecting') client.lastConnectingAt = Date.now();
    });
    sync.on('change', (e) => {
      const record = this.options.recordStates && sync.state ? { stateVersion: sync.version, stateJson: stateJson(sync.state) } : {};
      if (e.kind === 'delta') client.history.entries.push({ kind: 'delta', epoch: e.epoch, version: e.version, changeJson: JSON.stringify(e.change), ...record });
      else client.history.entries.push({ kind: 'snapshot', epoch: e.epoch, version: e.version, epochChanged: e.epochChanged, ...record });
    });
    sync.start();
    return client;
  }

  /**
   * Polls until every client holds `target` (same epoch, version and state, status live) or
   * `limitMs` passes; returns each client's time from `since`, with the spec bound that applies.
   */
  async converge(target: Target, since: number, limitMs: number, bounds: { beaconMs: number; backoffCapMs: number }): Promise<ConvergenceResult[]> {
    const results = new Map<FleetClient, ConvergenceResult>();
    const reconnected = new Map(this.clients.map((c) => [c, c.sync.status.status === 'offline' || c.sync.status.status === 'connecting']));
    const deadline = since + limitMs;
    for (;;) {
      const now = Date.now();
      for (const c of this.clients) {
        if (results.has(c)) continue;
        if (c.lastConnectingAt >= since) reconnected.set(c, true);
        const s = c.sync;
        if (s.epoch === target.epoch && s.version === target.version && s.status.status === 'live' && s.state && stateJson(s.state) === target.stateJson) {
          const r = reconnected.get(c)!;
          results.set(c, { client: c.tag, ms: now - since, reconnected: r, boundMs: bounds.beaconMs + (r ? bounds.backoffCapMs : 0) });
        }
      }
      if (results.size === this.clients.length || now > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.clients.map((c) => results.get(c) ?? { client: c.tag, ms: null, reconnected: reconnected.get(c)!, boundMs: bounds.beaconMs + bounds.backoffCapMs });
  }

  /** Every client, current and retired. */
  get all(): FleetClient[] {
    return [...this.retired, ...this.clients];
  }

  close(): void {
    for (const c of this.clients) c.sync.close();
  }
}
