// The bridge from the StateSync client to preact signals. Change and status events only mark what
// they touched; at most once per animation frame flush() publishes new entity lists in one batch,
// in which every entity that did not change keeps its object identity (snapshots included: a
// replacement is diffed against what is shown, never cleared and refilled), so memoized rows skip.
import { batch, computed, signal, type ReadonlySignal } from '@preact/signals';
import type { ChangeEvent, StateSync, StatusEvent } from '../client/state-sync.js';
import type { Change, Command, EventLogEntry, Host, Limits, Pipeline } from '../protocol/schema.js';
import { jsonEqual } from './equal.js';

export interface FrameScheduler {
  request(callback: () => void): number;
  cancel(handle: number): void;
}

const animationFrames: FrameScheduler = {
  request: (callback) => requestAnimationFrame(callback),
  cancel: (handle) => cancelAnimationFrame(handle),
};

type Collection = 'hosts' | 'commands' | 'pipelines' | 'events';
const ALL: readonly Collection[] = ['hosts', 'commands', 'pipelines', 'events'];

/** What each change can touch (command changes move `host.pending_command` too). */
function touched(change: Change): readonly Collection[] {
  switch (change.type) {
    case 'host_added':
    case 'host_updated':
    case 'host_removed':
      return ['hosts'];
    case 'command_started':
    case 'command_finished':
      return ['commands', 'hosts'];
    case 'command_updated':
    case 'command_progress':
      return ['commands'];
    case 'event':
      return ['events'];
    case 'pipeline_started':
    case 'pipeline_updated':
    case 'pipeline_finished':
      return ['pipelines'];
    case 'limits_changed':
      return ALL;
  }
}

interface Shown<T> {
  /** The object in the client's state this entry was last compared with. */
  source: T;
  /** The object the UI holds: `source`, or an older object equal to it. */
  shown: T;
}

export interface StoreStats {
  /** Change events received. */
  changes: number;
  /** Frames in which signals were published. */
  flushes: number;
}

export class FleetStore {
  readonly hosts = signal<readonly Host[]>([]);
  readonly hostsById = signal<ReadonlyMap<string, Host>>(new Map());
  /** Host id → hostname; a new map only when a host is added, removed or renamed. */
  readonly hostnames = signal<ReadonlyMap<string, string>>(new Map());
  /** In the state's order: started first. */
  readonly commands = signal<readonly Command[]>([]);
  readonly commandsById = signal<ReadonlyMap<string, Command>>(new Map());
  readonly pipelines = signal<readonly Pipeline[]>([]);
  /** Newest first. */
  readonly events = signal<readonly EventLogEntry[]>([]);
  readonly limits = signal<Limits | null>(null);
  readonly status = signal<StatusEvent>({ status: 'offline', reason: 'not started' });
  readonly version = signal(-1);
  readonly epoch = signal<string | null>(null);
  /** Whether a state (init) has been received at all. */
  readonly hasState = signal(false);
  /** Incremented whenever the epoch changes and the previous state is dropped. */
  readonly epochResets = signal(0);
  /** Client clock, advanced once a second (inside a frame, like everything else). */
  readonly clock = signal(Date.now());
  /** Client time of the last server message while the link is down; null while it is up. */
  readonly frozenAt = signal<number | null>(null);
  /**
   * "Now" for judging host ages: the clock while the link is up; while it is down, the moment
   * of the last server message, so hosts do not turn stale only because we stopped hearing.
   */
  readonly referenceNow: ReadonlySignal<number> = computed(() => this.frozenAt.value ?? this.clock.value);
  readonly stats: StoreStats = { changes: 0, flushes: 0 };

  private readonly dirty = new Set<Collection>();
  private metaDirty = true;
  private tickDue = false;
  private dropPending = false;
  private lastMessageAt: number | null = null;
  private frame: number | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private readonly unsubscribe: Array<() => void> = [];
  private shownHosts = new Map<string, Shown<Host>>();
  private shownCommands = new Map<string, Shown<Command>>();
  private shownPipelines = new Map<string, Shown<Pipeline>>();
  private shownEvents = new Map<string, Shown<EventLogEntry>>();

  constructor(
    readonly sync: StateSync,
    private readonly frames: FrameScheduler = animationFrames,
  ) {
    this.unsubscribe.push(
      sync.on('change', (event) => this.onChange(event)),
      sync.on('status', (event) => this.onStatus(event)),
    );
    this.ticker = setInterval(() => {
      this.tickDue = true;
      this.schedule();
    }, 1000);
    this.schedule();
  }

  dispose(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.ticker !== null) clearInterval(this.ticker);
    if (this.frame !== null) this.frames.cancel(this.frame);
    this.frame = null;
  }

  private onChange(event: ChangeEvent): void {
    this.stats.changes++;
    if (event.kind === 'snapshot') {
      // A different epoch: what we show belongs to a history that no longer exists.
      if (event.epochChanged) this.dropPending = true;
      for (const c of ALL) this.dirty.add(c);
    } else {
      for (const c of touched(event.change)) this.dirty.add(c);
    }
    this.metaDirty = true;
    this.schedule();
  }

  private onStatus(event: StatusEvent): void {
    const up = event.status === 'live' || event.status === 'resyncing';
    if (up) {
      this.lastMessageAt = null;
    } else if (this.lastMessageAt === null && this.sync.state !== null) {
      // Read now: once the client reconnects, silenceMs counts from the new attempt.
      const silence = this.sync.silenceMs;
      this.lastMessageAt = Date.now() - (Number.isFinite(silence) ? silence : 0);
    }
    this.metaDirty = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.frame === null) this.frame = this.frames.request(() => this.flush());
  }

  /** Publishes everything marked since the last frame, in one batch (one render). */
  flush(): void {
    this.frame = null;
    const state = this.sync.state;
    this.stats.flushes++;
    batch(() => {
      if (this.dropPending) {
        this.dropPending = false;
        this.shownHosts = new Map();
        this.shownCommands = new Map();
        this.shownPipelines = new Map();
        this.shownEvents = new Map();
        this.epochResets.value++;
      }
      if (state !== null) {
        if (this.dirty.has('hosts')) this.publishHosts(state.hosts);
        if (this.dirty.has('commands')) {
          const list = reconcile(this.shownCommands, state.commands.values());
          this.shownCommands = list.shown;
          if (!sameItems(this.commands.value, list.items)) {
            this.commands.value = list.items;
            this.commandsById.value = new Map(list.items.map((c) => [c.id, c]));
          }
        }
        if (this.dirty.has('pipelines')) {
          const list = reconcile(this.shownPipelines, state.pipelines.values());
          this.shownPipelines = list.shown;
          if (!sameItems(this.pipelines.value, list.items)) this.pipelines.value = list.items;
        }
        if (this.dirty.has('events')) {
          const list = reconcile(this.shownEvents, state.events);
          this.shownEvents = list.shown;
          const newestFirst = list.items.reverse();
          if (!sameItems(this.events.value, newestFirst)) this.events.value = newestFirst;
        }
        if (!jsonEqual(this.limits.value, state.limits)) this.limits.value = { ...state.limits };
      }
      this.dirty.clear();
      if (this.metaDirty) {
        this.metaDirty = false;
        this.hasState.value = state !== null;
        this.version.value = this.sync.version;
        this.epoch.value = this.sync.epoch;
        const status = this.sync.status;
        if (status.status !== this.status.value.status || status.reason !== this.status.value.reason) this.status.value = status;
        this.frozenAt.value = this.lastMessageAt;
      }
      if (this.tickDue) {
        this.tickDue = false;
        this.clock.value = Date.now();
      }
    });
  }

  /**
   * Hosts are the one collection that can be large (10,000 and more), so an update of a few of
   * them, the usual frame, is published in place of the shown list: the entries that changed
   * are swapped into a copy of it and of `hostsById`, and `hostnames` is copied only when a name
   * changed. A host added, removed or moved rebuilds everything, as the other collections do.
   */
  private publishHosts(hosts: ReadonlyMap<string, Host>): void {
    const updated = updateInPlace(this.shownHosts, this.hosts.value, hosts);
    if (updated === null) {
      const list = reconcile(this.shownHosts, hosts.values());
      this.shownHosts = list.shown;
      if (sameItems(this.hosts.value, list.items)) return;
      this.hosts.value = list.items;
      this.hostsById.value = new Map(list.items.map((h) => [h.id, h]));
      const names = new Map(list.items.map((h) => [h.id, h.hostname]));
      if (!sameMap(this.hostnames.value, names)) this.hostnames.value = names;
      return;
    }
    if (updated.length === 0) return;
    const items = this.hosts.value.slice();
    const byId = new Map(this.hostsById.value);
    let names: Map<string, string> | null = null;
    for (const { index, before, after } of updated) {
      items[index] = after;
      byId.set(after.id, after);
      if (before.hostname !== after.hostname) (names ??= new Map(this.hostnames.value)).set(after.id, after.hostname);
    }
    this.hosts.value = items;
    this.hostsById.value = byId;
    if (names) this.hostnames.value = names;
  }
}

/**
 * Brings `shown` up to date with `items` when they hold the same ids in the same order as
 * `previous` (the list last published), and returns the entries whose shown object must change
 * (an update to an equal value keeps the old object). Null when ids were added, removed or
 * reordered: the caller then reconciles the whole list. One pass, no new maps. (Entries brought
 * up to date before a structural difference is found are exactly what that reconcile concludes.)
 */
function updateInPlace<T extends { id: string }>(shown: Map<string, Shown<T>>, previous: readonly T[], items: ReadonlyMap<string, T>): Array<{ index: number; before: T; after: T }> | null {
  if (items.size !== previous.length || shown.size !== previous.length) return null;
  const updated: Array<{ index: number; before: T; after: T }> = [];
  let index = 0;
  for (const [id, source] of items) {
    const entry = shown.get(id);
    if (entry === undefined || previous[index]!.id !== id) return null;
    if (entry.source !== source) {
      entry.source = source;
      if (!jsonEqual(entry.shown, source)) {
        updated.push({ index, before: entry.shown, after: source });
        entry.shown = source;
      }
    }
    index++;
  }
  return updated;
}

/**
 * The entities of `items` in order, each replaced by the object already shown for its id when it
 * is the same source object or equal to it, so unchanged entities keep their identity.
 */
function reconcile<T extends { id: string }>(previous: Map<string, Shown<T>>, items: Iterable<T>): { items: T[]; shown: Map<string, Shown<T>> } {
  const out: T[] = [];
  const shown = new Map<string, Shown<T>>();
  for (const source of items) {
    const before = previous.get(source.id);
    let keep: T = source;
    if (before && (before.source === source || jsonEqual(before.shown, source))) keep = before.shown;
    shown.set(source.id, { source, shown: keep });
    out.push(keep);
  }
  return { items: out, shown };
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameMap<K, V>(a: ReadonlyMap<K, V>, b: ReadonlyMap<K, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
