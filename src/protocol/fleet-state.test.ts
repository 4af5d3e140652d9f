// Property-based tests of the shared reducer. Schedules are generated as "intents" (add a host,
// finish some command, ...) resolved against the state they are applied to, so every change in a
// schedule is valid where it lands; shrinking works on the intents.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChange, checkChange, cloneState, emptyState, fromFullState, hostDetailOf, tail, toFullState, type FleetState } from './fleet-state.js';
import { isDisplayName } from './names.js';
import {
  COMMAND_TERMINAL_STATUSES,
  COMPARTMENT_STATUSES,
  ChangeSchema,
  EVENT_LEVELS,
  FullStateSchema,
  HOST_STATUSES,
  HOST_TYPES,
  OPS,
  PIPELINE_DROP_REASONS,
  PIPELINE_HOST_STATUSES,
  PIPELINE_PHASES,
  PIPELINE_PRESET_NAMES,
  PIPELINE_RUNNERS,
  PIPELINE_STOP_REASONS,
  PIPELINE_TERMINAL_STATUSES,
  isTerminalCommandStatus,
  isTerminalPipelineStatus,
  type Change,
  type Command,
  type Compartment,
  type Compartments,
  type EventLogEntry,
  type Host,
  type HostFields,
  type Limits,
  type Pipeline,
  type PipelineDrop,
  type PipelineFields,
  type PipelineHostUpdate,
} from './schema.js';

const NUM_RUNS = 200;
const runs = { numRuns: NUM_RUNS };

// ---------------------------------------------------------------------------------------------
// Leaf arbitraries
// ---------------------------------------------------------------------------------------------

/** Characters that stress JSON encoding and UTF-16 boundaries: quotes, escapes, astral symbols. */
const trickyChar = fc.constantFrom('a', 'Z', '0', ' ', '"', '\\', '\n', '\u2028', 'é', '€', '😀', '𝄞', '\u0000');
const text = (maxLength: number, minLength = 0) =>
  fc.oneof(fc.string({ minLength, maxLength, unit: trickyChar }), fc.string({ minLength, maxLength, unit: 'binary' }));
const orNull = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });
/** Printable names in any script (pipelines): the tricky characters that the name rule allows. */
const displayName = fc.string({ minLength: 1, maxLength: 20, unit: fc.constantFrom('a', 'Z', '0', ' ', '"', '\\', 'é', '€', '😀', '𝄞') }).filter(isDisplayName);

const timestamp = fc
  .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const percent = fc.double({ min: 0, max: 100, noNaN: true });
const metrics = fc.record({ cpu: percent, ram: percent, swap: percent, load: fc.double({ min: 0, max: 1e6, noNaN: true }) }, { noNullPrototype: true });
const compartment: fc.Arbitrary<Compartment> = fc.record(
  { status: fc.constantFrom(...COMPARTMENT_STATUSES), message: text(30), checked_at: orNull(timestamp) },
  { noNullPrototype: true },
);
const compartments: fc.Arbitrary<Compartments> = fc.record(
  { git: compartment, lock: compartment, system: compartment, tests: compartment },
  { noNullPrototype: true },
);
const partialCompartments = fc.record(
  { git: compartment, lock: compartment, system: compartment, tests: compartment },
  { requiredKeys: [], noNullPrototype: true },
);
const op = fc.constantFrom(...OPS);
const details = fc.dictionary(
  fc.constantFrom('a', 'count', 'ok', 'x.y', 'n-1', 'host_id'),
  fc.oneof(text(10), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)),
  { maxKeys: 4, noNullPrototype: true },
);
const limits: fc.Arbitrary<Limits> = fc.record(
  { events: fc.integer({ min: 1, max: 6 }), commands: fc.integer({ min: 0, max: 4 }), pipelines: fc.integer({ min: 0, max: 3 }), output_tail: fc.integer({ min: 0, max: 24 }) },
  { noNullPrototype: true },
);

// ---------------------------------------------------------------------------------------------
// Intents and their resolution into valid changes
// ---------------------------------------------------------------------------------------------

/** Host ids are drawn from a small pool first, so removed hosts come back under the same id. */
const HOST_ID_POOL = ['h0', 'h1', 'h2', 'h3'];
/** RFC 1123 names, with a pair that differs only in case: the fold allows it (a store written
 *  before the rule may hold one); only admission of new changes refuses it. */
const HOSTNAME_POOL = ['alpha', 'beta.example.org', 'Alpha', 'web-1'];

type HostExtras = Omit<Host, 'id' | 'hostname' | 'pending_command' | 'created_at' | 'os_version' | 'nixpkgs_version'>;

type Intent =
  | { kind: 'addHost'; idPick: number; namePick: number; host: HostExtras; created_at: string }
  | { kind: 'updateHost'; pick: number; rename: number | null; fields: Omit<HostFields, 'hostname'> }
  | { kind: 'removeHost'; pick: number }
  | { kind: 'startCommand'; pick: number; op: Command['op']; status: 'pending' | 'running'; pipelinePick: number | null; at: string }
  | { kind: 'progress'; pick: number; chunk: string; seq: number | null }
  | { kind: 'updateCommand'; pick: number; pid: number | null; stopAt: string | null; exitCode: number | null }
  | { kind: 'finishCommand'; pick: number; status: (typeof COMMAND_TERMINAL_STATUSES)[number]; exit_code: number | null; at: string }
  | { kind: 'startPipeline'; hostPicks: number[]; stages: Command['op'][]; name: string; status: 'pending' | 'running'; hostStatus: Pipeline['host_status'][string]; at: string; runner: RunnerFields; hostStage: number; dropped: DropPick | null }
  | { kind: 'updatePipeline'; pick: number; stage: number | null; status: 'pending' | 'running' | null; hostStatus: { pick: number; status: Pipeline['host_status'][string] }[]; runner: Partial<Pick<PipelineFields, 'phase' | 'cancel_requested_at' | 'stop_reason'>>; hostDetail: { pick: number; stage: number | null; dropped: DropPick | null }[] }
  /** A pipeline starts a host's command of its next stage: the runner's atomic pair. */
  | { kind: 'pipelineStep'; pick: number; hostPick: number; at: string }
  | { kind: 'finishPipeline'; pick: number; status: (typeof PIPELINE_TERMINAL_STATUSES)[number]; at: string }
  | { kind: 'event'; event: Omit<EventLogEntry, 'id' | 'host_id'>; hostPick: number | null }
  | { kind: 'limits'; limits: Limits };

/** The rollout fields of a new pipeline (run_by `client` is what an old log's pipeline reads as). */
type RunnerFields = Pick<Pipeline, 'run_by' | 'preset' | 'parallel' | 'canary' | 'max_failures' | 'phase' | 'cancel_requested_at' | 'stop_reason'>;
/** A drop, its stage taken modulo the pipeline's stages when resolved. */
type DropPick = Omit<PipelineDrop, 'op' | 'command_id'> & { withCommand: boolean };

const runnerFields: fc.Arbitrary<RunnerFields> = fc.record(
  {
    run_by: fc.constantFrom(...PIPELINE_RUNNERS),
    preset: orNull(fc.constantFrom(...PIPELINE_PRESET_NAMES)),
    parallel: orNull(fc.integer({ min: 1, max: 4 })),
    canary: orNull(fc.integer({ min: 1, max: 3 })),
    max_failures: orNull(fc.integer({ min: 0, max: 3 })),
    phase: fc.constantFrom(...PIPELINE_PHASES),
    cancel_requested_at: orNull(timestamp),
    stop_reason: orNull(fc.constantFrom(...PIPELINE_STOP_REASONS)),
  },
  { noNullPrototype: true },
);
const dropPick: fc.Arbitrary<DropPick> = fc.record(
  { reason: fc.constantFrom(...PIPELINE_DROP_REASONS), stage: fc.nat({ max: 49 }), exit_code: orNull(fc.integer({ min: -1, max: 255 })), message: text(20, 1), withCommand: fc.boolean() },
  { noNullPrototype: true },
);

const intent: fc.Arbitrary<Intent> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('addHost' as const),
      idPick: fc.nat(),
      namePick: fc.nat(),
      created_at: timestamp,
      host: fc.record(
        {
          host_type: fc.constantFrom(...HOST_TYPES),
          status: fc.constantFrom(...HOST_STATUSES),
          last_seen: orNull(timestamp),
          agent_version: orNull(text(12)),
          generation: orNull(text(12)),
          metrics: orNull(metrics),
          compartments,
        },
        { noNullPrototype: true },
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('updateHost' as const),
      pick: fc.nat(),
      rename: orNull(fc.nat()),
      fields: fc.record(
        {
          host_type: fc.constantFrom(...HOST_TYPES),
          status: fc.constantFrom(...HOST_STATUSES),
          last_seen: orNull(timestamp),
          agent_version: orNull(text(12)),
          generation: orNull(text(12)),
          metrics: orNull(metrics),
          compartments: partialCompartments,
        },
        { requiredKeys: [], noNullPrototype: true },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeHost' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('startCommand' as const),
      pick: fc.nat(),
      op,
      status: fc.constantFrom('pending' as const, 'running' as const),
      pipelinePick: orNull(fc.nat()),
      at: timestamp,
    }),
  },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('progress' as const), pick: fc.nat(), chunk: text(12, 1), seq: orNull(fc.integer({ min: 1, max: 1000 })) }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('updateCommand' as const), pick: fc.nat(), pid: orNull(fc.nat()), stopAt: orNull(timestamp), exitCode: orNull(fc.integer({ min: -1, max: 255 })) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('finishCommand' as const),
      pick: fc.nat(),
      status: fc.constantFrom(...COMMAND_TERMINAL_STATUSES),
      exit_code: orNull(fc.integer({ min: -255, max: 255 })),
      at: timestamp,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('startPipeline' as const),
      hostPicks: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
      stages: fc.array(op, { minLength: 1, maxLength: 4 }),
      name: displayName,
      status: fc.constantFrom('pending' as const, 'running' as const),
      hostStatus: fc.constantFrom(...PIPELINE_HOST_STATUSES),
      at: timestamp,
      runner: runnerFields,
      hostStage: fc.nat(),
      dropped: orNull(dropPick),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('pipelineStep' as const), pick: fc.nat(), hostPick: fc.nat(), at: timestamp }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('updatePipeline' as const),
      pick: fc.nat(),
      stage: orNull(fc.nat()),
      status: orNull(fc.constantFrom('pending' as const, 'running' as const)),
      hostStatus: fc.array(fc.record({ pick: fc.nat(), status: fc.constantFrom(...PIPELINE_HOST_STATUSES) }), { maxLength: 3 }),
      runner: fc.record(
        { phase: fc.constantFrom(...PIPELINE_PHASES), cancel_requested_at: timestamp, stop_reason: fc.constantFrom(...PIPELINE_STOP_REASONS) },
        { requiredKeys: [], noNullPrototype: true },
      ),
      hostDetail: fc.array(fc.record({ pick: fc.nat(), stage: orNull(fc.nat()), dropped: orNull(dropPick) }), { maxLength: 2 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('finishPipeline' as const), pick: fc.nat(), status: fc.constantFrom(...PIPELINE_TERMINAL_STATUSES), at: timestamp }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('event' as const),
      hostPick: orNull(fc.nat()),
      event: fc.record(
        {
          timestamp,
          category: fc.constantFrom('deploy', 'host', 'cmd_x', 'a-b'),
          level: fc.constantFrom(...EVENT_LEVELS),
          actor: orNull(text(10)),
          action: orNull(text(10)),
          message: text(30, 1),
          details: orNull(details),
        },
        { noNullPrototype: true },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('limits' as const), limits }) },
);

const pick = <T>(items: readonly T[], n: number): T | undefined => (items.length === 0 ? undefined : items[n % items.length]);

/** Mints fresh ids while a schedule is resolved. */
class Ids {
  private next = 0;
  fresh(prefix: string): string {
    return `${prefix}-${this.next++}`;
  }
}

/** A drop as a pipeline of these stages can hold it, naming one of its recent commands or none. */
function resolveDrop(drop: DropPick, pipeline: Pick<Pipeline, 'stages'>, commands: readonly Command[]): PipelineDrop {
  const { withCommand, ...rest } = drop;
  const stage = drop.stage % pipeline.stages.length;
  const command = withCommand ? commands[0] : undefined;
  return { ...rest, stage, op: pipeline.stages[stage]!, command_id: command?.id ?? null };
}

/** Turns one intent into a change (or an atomic group) valid against `state`, or null when it does not apply there. */
function resolveIntent(state: FleetState, it: Intent, ids: Ids): Change | Change[] | null {
  const hosts = [...state.hosts.values()];
  const commands = [...state.commands.values()];
  const pipelines = [...state.pipelines.values()];
  const hostnameFree = (name: string, except?: string) => hosts.every((h) => h.hostname !== name || h.id === except);
  switch (it.kind) {
    case 'addHost': {
      const pooledId = pick(HOST_ID_POOL, it.idPick)!;
      const id = state.hosts.has(pooledId) ? ids.fresh('host') : pooledId;
      const pooledName = pick(HOSTNAME_POOL, it.namePick)!;
      const hostname = hostnameFree(pooledName) ? pooledName : ids.fresh('hostname');
      return { type: 'host_added', host: { id, hostname, ...it.host, os_version: null, nixpkgs_version: null, pending_command: null, created_at: it.created_at } };
    }
    case 'updateHost': {
      const host = pick(hosts, it.pick);
      if (!host) return null;
      const fields: HostFields = { ...it.fields };
      if (it.rename !== null) {
        const name = pick(HOSTNAME_POOL, it.rename)!;
        fields.hostname = hostnameFree(name, host.id) ? name : ids.fresh('renamed');
      }
      if (Object.keys(fields).length === 0) fields.status = 'online';
      return { type: 'host_updated', id: host.id, fields };
    }
    case 'removeHost': {
      // A busy host cannot be removed (its running command would be orphaned).
      const host = pick(hosts.filter((h) => h.pending_command === null), it.pick);
      return host ? { type: 'host_removed', id: host.id } : null;
    }
    case 'startCommand': {
      const host = pick(hosts.filter((h) => h.pending_command === null), it.pick);
      if (!host) return null;
      const pipeline = it.pipelinePick === null ? undefined : pick(pipelines, it.pipelinePick);
      const command: Command = {
        id: ids.fresh('cmd'),
        host_id: host.id,
        op: it.op,
        status: it.status,
        created_at: it.at,
        started_at: it.status === 'running' ? it.at : null,
        finished_at: null,
        exit_code: null,
        pipeline_id: pipeline?.id ?? null,
        output: '',
        output_size: 0,
        sent_at: null,
        pid: null,
        stop_requested_at: null,
        output_seq: 0,
      };
      return { type: 'command_started', command };
    }
    case 'progress': {
      const command = pick(commands.filter((c) => !isTerminalCommandStatus(c.status)), it.pick);
      return command ? { type: 'command_progress', id: command.id, output: it.chunk, ...(it.seq !== null ? { seq: it.seq } : {}) } : null;
    }
    case 'updateCommand': {
      const command = pick(commands.filter((c) => !isTerminalCommandStatus(c.status)), it.pick);
      if (!command) return null;
      return { type: 'command_updated', id: command.id, fields: { status: 'running', pid: it.pid, stop_requested_at: it.stopAt, exit_code: it.exitCode } };
    }
    case 'finishCommand': {
      const command = pick(commands.filter((c) => !isTerminalCommandStatus(c.status)), it.pick);
      return command ? { type: 'command_finished', id: command.id, status: it.status, exit_code: it.exit_code, finished_at: it.at } : null;
    }
    case 'startPipeline': {
      const members = [...new Set(it.hostPicks.map((n) => pick(hosts, n)?.id).filter((id): id is string => id !== undefined))];
      if (members.length === 0) return null;
      const pipeline: Pipeline = {
        id: ids.fresh('pipe'),
        name: it.name,
        hosts: members,
        stages: it.stages,
        current_stage: 0,
        status: it.status,
        host_status: Object.fromEntries(members.map((id) => [id, it.hostStatus])),
        created_at: it.at,
        started_at: it.status === 'running' ? it.at : null,
        finished_at: null,
        ...it.runner,
        // Either none (as a pipeline from before the runner) or one per host, in their order.
        host_detail:
          it.runner.run_by === 'client' ? [] : members.map((id, i) => ({ host: id, stage: (it.hostStage + i) % it.stages.length, steps: [], dropped: it.dropped && i === 0 ? resolveDrop(it.dropped, it, commands) : null })),
      };
      return { type: 'pipeline_started', pipeline };
    }
    case 'pipelineStep': {
      // A host of a running pipeline, idle, whose detail is due for its next stage.
      const pipeline = pick(pipelines.filter((p) => !isTerminalPipelineStatus(p.status)), it.pick);
      if (!pipeline) return null;
      const ready = pipeline.hosts.filter((id) => {
        const detail = hostDetailOf(pipeline, id);
        return state.hosts.get(id)?.pending_command === null && detail.steps.length < pipeline.stages.length;
      });
      const hostId = pick(ready, it.hostPick);
      if (hostId === undefined) return null;
      const stage = hostDetailOf(pipeline, hostId).steps.length;
      const command: Command = { ...commandOn(hostId, ids.fresh('cmd'), pipeline.id), op: pipeline.stages[stage]!, status: 'pending', created_at: it.at, started_at: null };
      return [
        { type: 'command_started', command },
        { type: 'pipeline_updated', id: pipeline.id, fields: { host_status: { [hostId]: 'running' }, host_detail: { [hostId]: { stage, command_id: command.id } } } },
      ];
    }
    case 'updatePipeline': {
      const pipeline = pick(pipelines.filter((p) => !isTerminalPipelineStatus(p.status)), it.pick);
      if (!pipeline) return null;
      const fields: PipelineFields = {};
      if (it.stage !== null) fields.current_stage = it.stage % pipeline.stages.length;
      if (it.status !== null) fields.status = it.status;
      if (it.hostStatus.length > 0) {
        fields.host_status = Object.fromEntries(it.hostStatus.map(({ pick: n, status }) => [pick(pipeline.hosts, n)!, status]));
      }
      Object.assign(fields, it.runner);
      const details = it.hostDetail.flatMap(({ pick: n, stage, dropped }): [string, PipelineHostUpdate][] => {
        const update: PipelineHostUpdate = {};
        if (stage !== null) update.stage = stage % pipeline.stages.length;
        if (dropped !== null) update.dropped = resolveDrop(dropped, pipeline, commands);
        return Object.keys(update).length > 0 ? [[pick(pipeline.hosts, n)!, update]] : [];
      });
      if (details.length > 0) fields.host_detail = Object.fromEntries(details);
      if (Object.keys(fields).length === 0) fields.status = 'running';
      return { type: 'pipeline_updated', id: pipeline.id, fields };
    }
    case 'finishPipeline': {
      const pipeline = pick(pipelines.filter((p) => !isTerminalPipelineStatus(p.status)), it.pick);
      return pipeline ? { type: 'pipeline_finished', id: pipeline.id, status: it.status, finished_at: it.at } : null;
    }
    case 'event': {
      const hostId = it.hostPick === null ? null : (pick(hosts, it.hostPick)?.id ?? 'gone-host');
      return { type: 'event', event: { id: ids.fresh('ev'), ...it.event, host_id: hostId } };
    }
    case 'limits':
      return { type: 'limits_changed', limits: { ...it.limits } };
  }
}

interface Schedule {
  initialLimits: Limits;
  changes: Change[];
}

/** Resolves intents in order; an intent that does not apply becomes an event, so no step is lost. */
function resolveSchedule(initialLimits: Limits, intents: readonly Intent[]): Schedule {
  const state = emptyState(initialLimits);
  const ids = new Ids();
  const changes: Change[] = [];
  for (const it of intents) {
    const resolved: Change | Change[] = resolveIntent(state, it, ids) ?? {
      type: 'event',
      event: { id: ids.fresh('ev'), timestamp: '2024-01-01T00:00:00.000Z', category: 'noop', level: 'info', actor: null, host_id: null, action: null, message: `no target for ${it.kind}`, details: null },
    };
    for (const change of Array.isArray(resolved) ? resolved : [resolved]) {
      applyChange(state, structuredClone(change));
      changes.push(change);
    }
  }
  return { initialLimits, changes };
}

const schedule: fc.Arbitrary<Schedule> = fc
  .tuple(limits, fc.array(intent, { maxLength: 80, size: 'max' }))
  .map(([initial, intents]) => resolveSchedule(initial, intents));

// ---------------------------------------------------------------------------------------------
// Folding helpers
// ---------------------------------------------------------------------------------------------

/** Applies a change after asserting it is schema-valid and accepted by checkChange. */
function applyValid(state: FleetState, change: Change): void {
  expect(ChangeSchema.parse(change)).toEqual(change);
  expect(checkChange(state, change)).toBeNull();
  applyChange(state, change);
}

function fold(initialLimits: Limits, changes: readonly Change[], state: FleetState = emptyState(initialLimits)): FleetState {
  for (const change of changes) applyValid(state, change);
  return state;
}

const json = (state: FleetState): string => JSON.stringify(toFullState(state));

/** What a restart does: encode the state, parse it back, rebuild the maps. */
const roundTrip = (state: FleetState): FleetState => fromFullState(JSON.parse(json(state)));

/** Every object (and array, map) reachable from `root`. */
function reachableObjects(root: unknown, into = new Set<object>()): Set<object> {
  if (typeof root !== 'object' || root === null || into.has(root)) return into;
  into.add(root);
  const children = root instanceof Map ? [...root.values()] : Object.values(root);
  for (const child of children) reachableObjects(child, into);
  return into;
}

/** Mutates every object and array reachable from `root` in place. */
function scramble(root: unknown): void {
  for (const object of reachableObjects(root)) {
    if (Array.isArray(object)) object.push('scrambled');
    else if (object instanceof Map) object.set('scrambled', 'scrambled');
    else {
      const record = object as Record<string, unknown>;
      for (const [key, value] of Object.entries(record)) if (typeof value !== 'object' || value === null) record[key] = 'scrambled';
      record.scrambled = true;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A reference model of what the reducer must retain
// ---------------------------------------------------------------------------------------------

/**
 * The longest suffix of a well-formed string, in whole code points, of at most `max` UTF-16
 * units: what `tail` must return for the strings the schedules produce.
 */
function referenceTail(s: string, max: number): string {
  const points = Array.from(s);
  let out = '';
  for (let i = points.length - 1; i >= 0; i--) {
    const next = points[i]! + out;
    if (next.length > max) break;
    out = next;
  }
  return out;
}

interface ModelCommand {
  terminal: boolean;
  /** Every output chunk received, concatenated. */
  allOutput: string;
  /** The output the state should hold: tailed on each chunk and each limit change. */
  expectedOutput: string;
  /** Whether the output limit has changed since the command started. */
  limitChanged: boolean;
}

/** Tracks, independently of the reducer, which entities must be kept and each command's output. */
class RetentionModel {
  limits: Limits;
  readonly commands = new Map<string, ModelCommand>();
  readonly pipelines = new Map<string, { terminal: boolean }>();
  events: string[] = [];

  constructor(limits: Limits) {
    this.limits = { ...limits };
  }

  step(change: Change): void {
    switch (change.type) {
      case 'command_started':
        this.commands.set(change.command.id, { terminal: isTerminalCommandStatus(change.command.status), allOutput: '', expectedOutput: '', limitChanged: false });
        break;
      case 'command_progress': {
        const command = this.commands.get(change.id)!;
        command.allOutput += change.output;
        command.expectedOutput = referenceTail(command.expectedOutput + change.output, this.limits.output_tail);
        break;
      }
      case 'command_finished':
        this.commands.get(change.id)!.terminal = true;
        break;
      case 'pipeline_started':
        this.pipelines.set(change.pipeline.id, { terminal: isTerminalPipelineStatus(change.pipeline.status) });
        break;
      case 'pipeline_finished':
        this.pipelines.get(change.id)!.terminal = true;
        break;
      case 'event':
        this.events.push(change.event.id);
        break;
      case 'limits_changed':
        for (const command of this.commands.values()) {
          if (change.limits.output_tail !== this.limits.output_tail) command.limitChanged = true;
          command.expectedOutput = referenceTail(command.expectedOutput, change.limits.output_tail);
        }
        this.limits = { ...change.limits };
        break;
      default:
        break;
    }
    // Retention: the last N events; every running entity plus the N newest finished ones.
    this.events = this.events.slice(Math.max(0, this.events.length - this.limits.events));
    dropOldestTerminal(this.commands, this.limits.commands);
    dropOldestTerminal(this.pipelines, this.limits.pipelines);
  }
}

function dropOldestTerminal(entries: Map<string, { terminal: boolean }>, keep: number): void {
  let terminal = [...entries.values()].filter((e) => e.terminal).length;
  for (const [id, entry] of entries) {
    if (terminal <= keep) return;
    if (entry.terminal) {
      entries.delete(id);
      terminal--;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe('schedule generator', () => {
  it('generates only changes that pass ChangeSchema and checkChange where they are applied', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        fold(initialLimits, changes); // applyValid asserts both for every step
      }),
      runs,
    );
  });

  it('reaches every kind of change', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(schedule, ({ changes }) => {
        for (const change of changes) seen.add(change.type);
      }),
      runs,
    );
    expect([...seen].sort()).toEqual(ChangeSchema.options.map((o) => o.shape.type.value).sort());
  });

  it('reaches pipelines whose steps ended, with each outcome of a command', () => {
    const outcomes = new Set<string>();
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        for (const pipeline of fold(initialLimits, changes).pipelines.values()) {
          for (const detail of pipeline.host_detail) for (const step of detail.steps) outcomes.add(step.status);
        }
      }),
      runs,
    );
    expect([...outcomes].sort()).toEqual(['cancelled', 'error', 'started', 'success', 'timeout']);
  });
});

describe('applyChange', () => {
  it('is deterministic: folding the same changes twice gives deep-equal, byte-identical states', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const a = fold(initialLimits, changes);
        const b = fold(initialLimits, changes);
        expect(toFullState(a)).toEqual(toFullState(b));
        expect(json(a)).toBe(json(b));
      }),
      runs,
    );
  });

  it('snapshot + replay equals the full fold at every split point (what a restart does)', () => {
    fc.assert(
      fc.property(schedule, fc.nat(), ({ initialLimits, changes }, k) => {
        const split = k % (changes.length + 1);
        const restored = roundTrip(fold(initialLimits, changes.slice(0, split)));
        fold(initialLimits, changes.slice(split), restored);
        expect(json(restored)).toBe(json(fold(initialLimits, changes)));
      }),
      runs,
    );
  });

  it('shares no object with the changes it applied: mutating them afterwards leaves the state alone', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const applied = structuredClone(changes);
        const state = fold(initialLimits, applied);
        const before = json(state);
        const stateObjects = reachableObjects(state);
        for (const object of reachableObjects(applied)) expect(stateObjects.has(object)).toBe(false);
        scramble(applied);
        expect(json(state)).toBe(before);
      }),
      runs,
    );
  });

  it('keeps the limits after every step: events, finished commands and pipelines, output tails', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const state = emptyState(initialLimits);
        const model = new RetentionModel(initialLimits);
        for (const change of changes) {
          applyValid(state, change);
          model.step(change);
          const { limits: l } = state;
          expect(l).toEqual(model.limits);

          expect(state.events.length).toBeLessThanOrEqual(l.events);
          expect(state.events.map((e) => e.id)).toEqual(model.events);

          const commands = [...state.commands.values()];
          expect(commands.filter((c) => isTerminalCommandStatus(c.status)).length).toBeLessThanOrEqual(l.commands);
          expect([...state.commands.keys()]).toEqual([...model.commands.keys()]);
          for (const [id, m] of model.commands) {
            const command = state.commands.get(id)!;
            expect(isTerminalCommandStatus(command.status)).toBe(m.terminal);
            expect(command.output.length).toBeLessThanOrEqual(l.output_tail);
            expect(m.allOutput.endsWith(command.output)).toBe(true);
            expect(command.output).toBe(m.expectedOutput);
            if (!m.limitChanged) expect(command.output).toBe(referenceTail(m.allOutput, l.output_tail));
            expect(command.output_size).toBe(m.allOutput.length);
          }

          const pipelines = [...state.pipelines.values()];
          expect(pipelines.filter((p) => isTerminalPipelineStatus(p.status)).length).toBeLessThanOrEqual(l.pipelines);
          expect([...state.pipelines.keys()]).toEqual([...model.pipelines.keys()]);
        }
      }),
      runs,
    );
  });

  it('sets host.pending_command exactly while the host has a running command, to its id', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const state = emptyState(initialLimits);
        for (const change of changes) {
          applyValid(state, change);
          const commands = [...state.commands.values()];
          for (const host of state.hosts.values()) {
            const running = commands.filter((c) => c.host_id === host.id && !isTerminalCommandStatus(c.status)).map((c) => c.id);
            expect(running).toEqual(host.pending_command === null ? [] : [host.pending_command]);
          }
          // And no running command is left without its host.
          for (const command of commands) {
            if (!isTerminalCommandStatus(command.status)) expect(state.hosts.get(command.host_id)?.pending_command).toBe(command.id);
          }
        }
      }),
      runs,
    );
  });

  it("keeps each running pipeline's record of its commands in step with them: started while running, then their outcome", () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const state = emptyState(initialLimits);
        for (const change of changes) {
          applyValid(state, change);
          for (const pipeline of state.pipelines.values()) {
            if (isTerminalPipelineStatus(pipeline.status)) continue;
            for (const detail of pipeline.host_detail) {
              for (const step of detail.steps) {
                const command = state.commands.get(step.command_id);
                if (!command) continue; // trimmed: the pipeline's record outlives it
                expect(step.status).toBe(isTerminalCommandStatus(command.status) ? command.status : 'started');
                if (step.status !== 'started') expect(step.exit_code).toBe(command.exit_code);
              }
            }
          }
        }
      }),
      runs,
    );
  });

  it('always produces a full state that validates against FullStateSchema', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const state = emptyState(initialLimits);
        expect(FullStateSchema.safeParse(toFullState(state)).success).toBe(true);
        for (const change of changes) {
          applyValid(state, change);
          const result = FullStateSchema.safeParse(toFullState(state));
          expect(result.success ? null : result.error.issues).toBeNull();
        }
      }),
      runs,
    );
  });

  it('merges a partial compartments update and keeps the other compartments', () => {
    fc.assert(
      fc.property(schedule, partialCompartments, ({ initialLimits, changes }, update) => {
        const state = fold(initialLimits, changes);
        for (const host of [...state.hosts.values()]) {
          applyValid(state, { type: 'host_updated', id: host.id, fields: { compartments: update } });
          expect(state.hosts.get(host.id)).toEqual({ ...host, compartments: { ...host.compartments, ...update } });
        }
      }),
      runs,
    );
  });
});

describe('updates from a parsed frame', () => {
  it('never add a key or touch the prototype, whatever the fields object holds', () => {
    const state = emptyState({ events: 10, commands: 10, pipelines: 10, output_tail: 100 });
    const host = { id: 'h1', hostname: 'h1', host_type: 'nixos', status: 'online', last_seen: null, agent_version: null, generation: null, os_version: null, nixpkgs_version: null, metrics: null, pending_command: null, compartments: {}, created_at: '2026-01-01T00:00:00.000Z' } as const;
    applyChange(state, { type: 'host_added', host: structuredClone(host) as never });
    // What a hostile server frame could carry once JSON.parse made it an object.
    const fields = JSON.parse('{"status":"offline","__proto__":{"polluted":true},"injected":1,"compartments":{"__proto__":{"polluted":true}}}');
    for (const owned of [false, true]) {
      applyChange(state, { type: 'host_updated', id: 'h1', fields }, owned);
      const updated = state.hosts.get('h1')! as unknown as Record<string, unknown>;
      expect(updated.status).toBe('offline');
      expect(Object.keys(updated).sort()).toEqual(Object.keys(host).sort());
      expect(Object.getPrototypeOf(updated)).toBe(Object.prototype);
      expect(Object.getPrototypeOf(updated.compartments)).toBe(Object.prototype);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });
});

describe('applyChange with an owned change', () => {
  it('folds to the same state as with copies, and no later change mutates an entity it shared', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const owned = structuredClone(changes);
        const shared = emptyState(initialLimits);
        for (const change of owned) applyChange(shared, change, true);
        expect(json(shared)).toBe(json(fold(initialLimits, changes)));
        // Every change object is unchanged by the folds that followed it (the reducer replaces
        // entities, it never edits one), so sharing them between states is safe.
        expect(owned).toEqual(changes);
      }),
      runs,
    );
  });
});

describe('cloneState', () => {
  it('makes an equal copy that shares no object with the original', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const original = fold(initialLimits, changes);
        const before = json(original);
        const copy = cloneState(original);
        expect(json(copy)).toBe(before);
        const originalObjects = reachableObjects(original);
        for (const object of reachableObjects(copy)) expect(originalObjects.has(object)).toBe(false);
        scramble(copy);
        expect(json(original)).toBe(before);
      }),
      runs,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// checkChange rejections
// ---------------------------------------------------------------------------------------------

const AT = '2025-06-01T12:00:00.000Z';

function hostWith(id: string, hostname: string): Host {
  const unknown: Compartment = { status: 'unknown', message: '', checked_at: null };
  return {
    id,
    hostname,
    host_type: 'nixos',
    status: 'online',
    last_seen: null,
    agent_version: null,
    generation: null,
    os_version: null,
    nixpkgs_version: null,
    metrics: null,
    pending_command: null,
    compartments: { git: unknown, lock: unknown, system: unknown, tests: unknown },
    created_at: AT,
  };
}

function commandOn(hostId: string, id: string, pipelineId: string | null = null): Command {
  return { id, host_id: hostId, op: 'switch', status: 'running', created_at: AT, started_at: AT, finished_at: null, exit_code: null, pipeline_id: pipelineId, output: '', output_size: 0, sent_at: null, pid: null, stop_requested_at: null, output_seq: 0 };
}

function pipelineOver(id: string, hosts: string[]): Pipeline {
  return {
    id,
    name: 'rollout',
    hosts,
    stages: ['pull', 'switch'],
    current_stage: 0,
    status: 'running',
    host_status: Object.fromEntries(hosts.map((h) => [h, 'pending' as const])),
    created_at: AT,
    started_at: AT,
    finished_at: null,
    run_by: 'server',
    preset: null,
    parallel: null,
    canary: null,
    max_failures: null,
    phase: 'rollout',
    cancel_requested_at: null,
    stop_reason: null,
    host_detail: hosts.map((host) => ({ host, stage: 0, steps: [], dropped: null })),
  };
}

/**
 * Changes `state` must reject, each with its expected code, built from what is in it. Every one
 * of them is schema-valid, so only checkChange stands between it and the state.
 */
function invalidChangesFor(state: FleetState): { name: string; code: 'not_found' | 'conflict'; change: Change }[] {
  const out: { name: string; code: 'not_found' | 'conflict'; change: Change }[] = [];
  const hosts = [...state.hosts.values()];
  const commands = [...state.commands.values()];
  const pipelines = [...state.pipelines.values()];
  const missing = 'missing-id';
  const notFound = (name: string, change: Change) => out.push({ name, code: 'not_found', change });
  const conflict = (name: string, change: Change) => out.push({ name, code: 'conflict', change });

  notFound('update of an unknown host', { type: 'host_updated', id: missing, fields: { status: 'online' } });
  notFound('removal of an unknown host', { type: 'host_removed', id: missing });
  notFound('command on an unknown host', { type: 'command_started', command: commandOn(missing, 'new-cmd') });
  notFound('progress of an unknown command', { type: 'command_progress', id: missing, output: 'x' });
  notFound('finish of an unknown command', { type: 'command_finished', id: missing, status: 'success', exit_code: 0, finished_at: AT });
  notFound('pipeline over an unknown host', { type: 'pipeline_started', pipeline: pipelineOver('new-pipe', [...hosts.map((h) => h.id), missing]) });
  notFound('update of an unknown pipeline', { type: 'pipeline_updated', id: missing, fields: { current_stage: 0 } });
  notFound('finish of an unknown pipeline', { type: 'pipeline_finished', id: missing, status: 'complete', finished_at: AT });

  for (const host of hosts) {
    conflict('host_added with an existing id', { type: 'host_added', host: hostWith(host.id, `${host.hostname}-other`) });
    conflict('host_added with an existing hostname', { type: 'host_added', host: hostWith('brand-new-host', host.hostname) });
    const other = hosts.find((h) => h.id !== host.id);
    if (other) conflict('rename to another host’s hostname', { type: 'host_updated', id: host.id, fields: { hostname: other.hostname } });
    if (host.pending_command !== null) {
      conflict('second command on a busy host', { type: 'command_started', command: commandOn(host.id, 'new-cmd') });
      conflict('removal of a busy host', { type: 'host_removed', id: host.id });
    } else {
      notFound('command in an unknown pipeline', { type: 'command_started', command: commandOn(host.id, 'new-cmd', missing) });
    }
  }
  for (const command of commands) {
    const idle = hosts.find((h) => h.pending_command === null);
    if (idle) conflict('command_started with an existing id', { type: 'command_started', command: commandOn(idle.id, command.id) });
    if (isTerminalCommandStatus(command.status)) {
      conflict('progress of a finished command', { type: 'command_progress', id: command.id, output: 'late' });
      conflict('finish of a finished command', { type: 'command_finished', id: command.id, status: 'error', exit_code: 1, finished_at: AT });
    }
  }
  if (hosts.length > 0) {
    const [first] = hosts;
    conflict('pipeline_started whose host_detail does not follow its hosts', { type: 'pipeline_started', pipeline: { ...pipelineOver('new-pipe', [first!.id]), host_detail: [{ host: 'someone-else', stage: 0, steps: [], dropped: null }] } });
  }
  for (const pipeline of pipelines) {
    if (hosts.length > 0) conflict('pipeline_started with an existing id', { type: 'pipeline_started', pipeline: pipelineOver(pipeline.id, [hosts[0]!.id]) });
    if (isTerminalPipelineStatus(pipeline.status)) {
      conflict('update of a finished pipeline', { type: 'pipeline_updated', id: pipeline.id, fields: { status: 'running' } });
      conflict('finish of a finished pipeline', { type: 'pipeline_finished', id: pipeline.id, status: 'failed', finished_at: AT });
    } else {
      conflict('update to a stage past the last', { type: 'pipeline_updated', id: pipeline.id, fields: { current_stage: pipeline.stages.length } });
      conflict('host_status of a host outside the pipeline', { type: 'pipeline_updated', id: pipeline.id, fields: { host_status: { [missing]: 'success' } } });
      conflict('host_detail of a host outside the pipeline', { type: 'pipeline_updated', id: pipeline.id, fields: { host_detail: { [missing]: { stage: 0 } } } });
      for (const detail of pipeline.host_detail) {
        const hostId = detail.host;
        const last = detail.steps.at(-1);
        if (last) conflict('a second command for a stage of a host', { type: 'pipeline_updated', id: pipeline.id, fields: { host_detail: { [hostId]: { stage: detail.steps.length - 1, command_id: last.command_id } } } });
        const foreign = commands.find((c) => c.host_id !== hostId || c.pipeline_id !== pipeline.id);
        if (foreign && detail.steps.length < pipeline.stages.length) {
          conflict('a command of another host or pipeline recorded as a step', { type: 'pipeline_updated', id: pipeline.id, fields: { host_detail: { [hostId]: { stage: detail.steps.length, command_id: foreign.id } } } });
        }
      }
    }
  }
  return out;
}

function expectRejectedAndIgnored(state: FleetState, name: string, code: 'not_found' | 'conflict', change: Change): void {
  expect(ChangeSchema.safeParse(change).success, `${name}: schema-valid`).toBe(true);
  expect(checkChange(state, change)?.code, name).toBe(code);
  const before = json(state);
  applyChange(state, change);
  expect(json(state), `${name}: applyChange must ignore it`).toBe(before);
}

describe('checkChange', () => {
  it('rejects unknown ids with not_found and conflicts with conflict; applyChange then changes nothing', () => {
    fc.assert(
      fc.property(schedule, ({ initialLimits, changes }) => {
        const state = fold(initialLimits, changes);
        for (const { name, code, change } of invalidChangesFor(state)) expectRejectedAndIgnored(state, name, code, change);
      }),
      runs,
    );
  });

  it('rejects each kind of invalid change in a state that has all of them', () => {
    const state = emptyState({ events: 10, commands: 10, pipelines: 10, output_tail: 100 });
    const steps: Change[] = [
      { type: 'host_added', host: hostWith('busy', 'busy.example.org') },
      { type: 'host_added', host: hostWith('idle', 'idle.example.org') },
      { type: 'pipeline_started', pipeline: pipelineOver('live', ['busy', 'idle']) },
      { type: 'pipeline_started', pipeline: pipelineOver('done', ['idle']) },
      { type: 'pipeline_finished', id: 'done', status: 'complete', finished_at: AT },
      { type: 'command_started', command: commandOn('idle', 'finished') },
      { type: 'command_finished', id: 'finished', status: 'success', exit_code: 0, finished_at: AT },
      { type: 'command_started', command: commandOn('busy', 'running', 'live') },
      { type: 'pipeline_updated', id: 'live', fields: { host_detail: { busy: { stage: 0, command_id: 'running' } } } },
    ];
    for (const step of steps) applyValid(state, step);

    const cases = invalidChangesFor(state);
    const names = new Set(cases.map((c) => c.name));
    for (const expected of [
      'update of an unknown host', 'removal of an unknown host', 'command on an unknown host', 'command in an unknown pipeline',
      'progress of an unknown command', 'finish of an unknown command', 'pipeline over an unknown host', 'update of an unknown pipeline',
      'finish of an unknown pipeline', 'host_added with an existing id', 'host_added with an existing hostname', 'rename to another host’s hostname',
      'second command on a busy host', 'removal of a busy host', 'command_started with an existing id', 'progress of a finished command',
      'finish of a finished command', 'pipeline_started with an existing id', 'update of a finished pipeline', 'finish of a finished pipeline',
      'update to a stage past the last', 'host_status of a host outside the pipeline', 'host_detail of a host outside the pipeline',
      'a second command for a stage of a host', 'a command of another host or pipeline recorded as a step', 'pipeline_started whose host_detail does not follow its hosts',
    ]) {
      expect(names, expected).toContain(expected);
    }
    for (const { name, code, change } of cases) expectRejectedAndIgnored(state, name, code, change);
  });

  it('accepts a host keeping its own hostname on update', () => {
    const state = emptyState();
    applyValid(state, { type: 'host_added', host: hostWith('h', 'h.example.org') });
    expect(checkChange(state, { type: 'host_updated', id: 'h', fields: { hostname: 'h.example.org' } })).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// tail
// ---------------------------------------------------------------------------------------------

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;

describe('tail', () => {
  /** Strings rich in surrogate pairs and lone surrogates. */
  const utf16 = fc.string({ maxLength: 40, unit: fc.constantFrom('a', 'é', '😀', '𝄞', '\ud83d', '\ude00', '\udc00') });

  it('returns a suffix of at most max units that never starts inside a surrogate pair', () => {
    fc.assert(
      fc.property(utf16, fc.integer({ min: 0, max: 50 }), (s, max) => {
        const out = tail(s, max);
        expect(out.length).toBeLessThanOrEqual(max);
        expect(s.endsWith(out)).toBe(true);
        if (s.length <= max) expect(out).toBe(s);
        else expect(out.length).toBeGreaterThanOrEqual(max - 1);
        const start = s.length - out.length;
        if (start > 0 && start < s.length) expect(isHigh(s.charCodeAt(start - 1)) && isLow(s.charCodeAt(start))).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('equals the longest whole-code-point suffix for well-formed strings', () => {
    fc.assert(
      fc.property(text(40), fc.integer({ min: 0, max: 50 }), (s, max) => {
        expect(tail(s, max)).toBe(referenceTail(s, max));
      }),
      { numRuns: 1000 },
    );
  });

  it('handles the edges: max 0, exact length, a pair cut in half', () => {
    expect(tail('abc', 0)).toBe('');
    expect(tail('', 0)).toBe('');
    expect(tail('abc', 3)).toBe('abc');
    expect(tail('a😀', 1)).toBe('');
    expect(tail('a😀', 2)).toBe('😀');
    expect(tail('😀b', 2)).toBe('b');
  });
});

describe('a log written before agents', () => {
  it('folds hosts and commands without the agent fields as if they were null (0 for output_seq)', () => {
    const { os_version: _os, nixpkgs_version: _nix, ...oldHost } = hostWith('h1', 'web-1');
    const { sent_at: _sent, pid: _pid, stop_requested_at: _stop, output_seq: _seq, ...oldCommand } = commandOn('h1', 'c1');
    const state = emptyState();
    applyChange(state, { type: 'host_added', host: oldHost as Host });
    expect(state.hosts.get('h1')).toEqual(hostWith('h1', 'web-1'));
    applyChange(state, { type: 'command_started', command: oldCommand as Command });
    applyChange(state, { type: 'command_progress', id: 'c1', output: 'building\n', seq: 7 });
    expect(state.commands.get('c1')).toMatchObject({ pid: null, stop_requested_at: null, output_seq: 7 });
    // A snapshot from before agents reads the same way.
    const restored = fromFullState({ ...toFullState(emptyState()), hosts: [oldHost as Host], commands: [oldCommand as Command] });
    expect(restored.hosts.get('h1')).toEqual(hostWith('h1', 'web-1'));
    expect(restored.commands.get('c1')).toEqual(commandOn('h1', 'c1'));
  });

  it('folds a pipeline without the runner fields as one a client drove, and keeps folding its old changes the same', () => {
    const { run_by: _r, preset: _p, parallel: _pa, canary: _c, max_failures: _m, phase: _ph, cancel_requested_at: _ca, stop_reason: _s, host_detail: _hd, ...oldPipeline } = pipelineOver('p1', ['h1']);
    const state = emptyState();
    applyChange(state, { type: 'host_added', host: hostWith('h1', 'web-1') });
    applyChange(state, { type: 'pipeline_started', pipeline: oldPipeline as Pipeline });
    const read = { run_by: 'client', preset: null, parallel: null, canary: null, max_failures: null, phase: 'rollout', cancel_requested_at: null, stop_reason: null, host_detail: [] };
    expect(state.pipelines.get('p1')).toEqual({ ...oldPipeline, ...read });
    // What a client did by hand then: a command of the pipeline, the stage and host status moved, the end.
    applyChange(state, { type: 'command_started', command: commandOn('h1', 'c1', 'p1') });
    applyChange(state, { type: 'pipeline_updated', id: 'p1', fields: { current_stage: 1, host_status: { h1: 'running' } } });
    applyChange(state, { type: 'command_finished', id: 'c1', status: 'success', exit_code: 0, finished_at: AT });
    applyChange(state, { type: 'pipeline_finished', id: 'p1', status: 'complete', finished_at: AT });
    expect(state.pipelines.get('p1')).toEqual({ ...oldPipeline, ...read, current_stage: 1, host_status: { h1: 'running' }, status: 'complete', finished_at: AT });
    // A snapshot from before the runner reads the same way.
    const restored = fromFullState({ ...toFullState(emptyState()), pipelines: [oldPipeline as Pipeline] });
    expect(restored.pipelines.get('p1')).toEqual({ ...oldPipeline, ...read });
    expect(JSON.stringify(toFullState(restored))).toBe(JSON.stringify(toFullState(roundTrip(restored))));
  });

  it('command_updated moves a command along and never a finished one', () => {
    const state = emptyState();
    applyChange(state, { type: 'host_added', host: hostWith('h1', 'web-1') });
    applyChange(state, { type: 'command_started', command: { ...commandOn('h1', 'c1'), status: 'pending', started_at: null } });
    applyChange(state, { type: 'command_updated', id: 'c1', fields: { status: 'running', started_at: AT, pid: 42 } });
    expect(state.commands.get('c1')).toMatchObject({ status: 'running', started_at: AT, pid: 42 });
    applyChange(state, { type: 'command_finished', id: 'c1', status: 'success', exit_code: 0, finished_at: AT });
    expect(checkChange(state, { type: 'command_updated', id: 'c1', fields: { pid: 1 } })?.code).toBe('conflict');
  });
});
