// The fleet state and its one reducer, `applyChange`, shared by the server and the client: the
// state at (epoch, version) is the fold of the change log, so the same code on both sides is what
// makes convergence provable. Deterministic: no clock, no randomness, trimming by count only.
// `checkChange` says whether a change may be applied; the reducer itself never throws.
import { isTerminalCommandStatus, isTerminalPipelineStatus } from './constants.js';
import { sameName } from './names.js';
import type { Change, Command, EventLogEntry, FullState, Host, Limits, Pipeline, PipelineFields, PipelineHostDetail, PipelineHostUpdate } from './schema.js';

/**
 * Fields added to an entity after logs were written without them, with the value an old record
 * means. The fold fills them in, so an old log and a new one read the same way everywhere.
 */
const HOST_DEFAULTS = { os_version: null, nixpkgs_version: null } as const;
const COMMAND_DEFAULTS = { sent_at: null, pid: null, stop_requested_at: null, output_seq: 0 } as const;

/**
 * A pipeline from before the server ran them was driven by a client (`run_by: client`), had no
 * rollout controls and kept no per-host detail.
 */
function pipelineDefaults() {
  return { run_by: 'client', preset: null, parallel: null, canary: null, max_failures: null, phase: 'rollout', cancel_requested_at: null, stop_reason: null, host_detail: [] } as const satisfies Partial<Pipeline>;
}

function withHostDefaults(host: Host): Host {
  return Object.hasOwn(host, 'os_version') ? host : { ...HOST_DEFAULTS, ...host };
}

function withCommandDefaults(command: Command): Command {
  for (const key of Object.keys(COMMAND_DEFAULTS)) if (!Object.hasOwn(command, key)) return { ...COMMAND_DEFAULTS, ...command };
  return command;
}

function withPipelineDefaults(pipeline: Pipeline): Pipeline {
  return Object.hasOwn(pipeline, 'run_by') ? pipeline : { ...pipeline, ...pipelineDefaults(), host_detail: [] };
}

/** A host's detail before the runner touched it. */
export function emptyHostDetail(host: string): PipelineHostDetail {
  return { host, stage: 0, steps: [], dropped: null };
}

/** The detail of one host of `pipeline` (an empty one if it has none yet). A scan: for single lookups. */
export function hostDetailOf(pipeline: Pipeline, hostId: string): PipelineHostDetail {
  const index = pipeline.hosts.indexOf(hostId);
  return (index >= 0 ? pipeline.host_detail[index] : undefined) ?? emptyHostDetail(hostId);
}

/** Positions of hosts in `hosts`: a scan for a few lookups, an index for many. */
function hostIndex(hosts: readonly string[], lookups: number): (hostId: string) => number {
  if (lookups <= 4) return (hostId) => hosts.indexOf(hostId);
  const index = new Map(hosts.map((hostId, i) => [hostId, i]));
  return (hostId) => index.get(hostId) ?? -1;
}

/**
 * The in-memory form of FullState: maps keyed by id (insertion order is the wire order) so an
 * update costs O(1). Entities are never mutated in place: an update replaces the object, so a
 * renderer can compare rows by identity and two states never share a mutable object.
 */
export interface FleetState {
  hosts: Map<string, Host>;
  commands: Map<string, Command>;
  pipelines: Map<string, Pipeline>;
  events: EventLogEntry[];
  limits: Limits;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  events: 100,
  commands: 50,
  pipelines: 20,
  output_tail: 64 * 1024,
});

export function emptyState(limits: Limits = DEFAULT_LIMITS): FleetState {
  return { hosts: new Map(), commands: new Map(), pipelines: new Map(), events: [], limits: { ...limits } };
}

export function fromFullState(full: FullState): FleetState {
  return {
    hosts: new Map(full.hosts.map((h) => [h.id, withHostDefaults(h)])),
    commands: new Map(full.commands.map((c) => [c.id, withCommandDefaults(c)])),
    pipelines: new Map(full.pipelines.map((p) => [p.id, withPipelineDefaults(p)])),
    events: [...full.events],
    limits: { ...full.limits },
  };
}

/** The wire form. Shares entity objects with the state: encode it, do not mutate it. */
export function toFullState(state: FleetState): FullState {
  return {
    hosts: [...state.hosts.values()],
    commands: [...state.commands.values()],
    pipelines: [...state.pipelines.values()],
    events: state.events,
    limits: state.limits,
  };
}

/** A deep copy that shares nothing with the original. */
export function cloneState(state: FleetState): FleetState {
  return structuredClone(state);
}

export type ChangeRejection = { code: 'not_found' | 'conflict'; message: string };

/**
 * Whether `change` can be applied to `state`: referenced entities exist, new ids are free, a
 * host runs one command at a time, finished things stay finished. Null when it can.
 */
export function checkChange(state: FleetState, change: Change): ChangeRejection | null {
  switch (change.type) {
    case 'host_added':
      if (state.hosts.has(change.host.id)) return conflict(`host '${change.host.id}' already exists`);
      for (const host of state.hosts.values()) {
        if (host.hostname === change.host.hostname) return conflict(`hostname '${host.hostname}' is already used by host '${host.id}'`);
      }
      return null;
    case 'host_updated': {
      if (!state.hosts.has(change.id)) return notFound(`host '${change.id}'`);
      const hostname = change.fields.hostname;
      if (hostname !== undefined) {
        for (const host of state.hosts.values()) {
          if (host.hostname === hostname && host.id !== change.id) return conflict(`hostname '${hostname}' is already used by host '${host.id}'`);
        }
      }
      return null;
    }
    case 'host_removed': {
      const host = state.hosts.get(change.id);
      if (!host) return notFound(`host '${change.id}'`);
      // Removing it would orphan its running command, and a host re-added under the same id
      // could then run a second one.
      if (host.pending_command !== null) return conflict(`host '${host.id}' is busy with command '${host.pending_command}'`);
      return null;
    }
    case 'command_started': {
      const { command } = change;
      if (state.commands.has(command.id)) return conflict(`command '${command.id}' already exists`);
      const host = state.hosts.get(command.host_id);
      if (!host) return notFound(`host '${command.host_id}'`);
      if (host.pending_command !== null) return conflict(`host '${host.id}' is busy with command '${host.pending_command}'`);
      if (command.pipeline_id !== null && !state.pipelines.has(command.pipeline_id)) return notFound(`pipeline '${command.pipeline_id}'`);
      return null;
    }
    case 'command_updated':
    case 'command_progress':
    case 'command_finished': {
      const command = state.commands.get(change.id);
      if (!command) return notFound(`command '${change.id}'`);
      if (isTerminalCommandStatus(command.status)) return conflict(`command '${change.id}' has already finished (${command.status})`);
      return null;
    }
    case 'event':
      return null;
    case 'pipeline_started': {
      const { pipeline } = change;
      if (state.pipelines.has(pipeline.id)) return conflict(`pipeline '${pipeline.id}' already exists`);
      for (const hostId of pipeline.hosts) {
        if (!state.hosts.has(hostId)) return notFound(`host '${hostId}'`);
      }
      const detail = pipeline.host_detail ?? [];
      if (detail.length > 0 && (detail.length !== pipeline.hosts.length || detail.some((entry, i) => entry.host !== pipeline.hosts[i]))) {
        return conflict(`pipeline '${pipeline.id}': host_detail must list its hosts in their order`);
      }
      return null;
    }
    case 'pipeline_updated':
    case 'pipeline_finished': {
      const pipeline = state.pipelines.get(change.id);
      if (!pipeline) return notFound(`pipeline '${change.id}'`);
      if (isTerminalPipelineStatus(pipeline.status)) return conflict(`pipeline '${change.id}' has already finished (${pipeline.status})`);
      if (change.type === 'pipeline_updated') return checkPipelineUpdate(state, pipeline, change.fields);
      return null;
    }
    case 'limits_changed':
      return null;
    default:
      return assertNever(change);
  }
}

/** Hosts named in an update belong to the pipeline; a stage exists; a host's stage records one command, its own. */
function checkPipelineUpdate(state: FleetState, pipeline: Pipeline, fields: PipelineFields): ChangeRejection | null {
  const stage = fields.current_stage;
  if (stage !== undefined && stage >= pipeline.stages.length) return conflict(`pipeline '${pipeline.id}' has no stage ${stage}`);
  const named = [...Object.keys(fields.host_status ?? {}), ...Object.keys(fields.host_detail ?? {})];
  if (named.length > 0) {
    const members = new Set(pipeline.hosts);
    for (const hostId of named) if (!members.has(hostId)) return conflict(`host '${hostId}' is not part of pipeline '${pipeline.id}'`);
  }
  const updates = Object.entries(fields.host_detail ?? {});
  const indexOf = hostIndex(pipeline.hosts, updates.length);
  for (const [hostId, update] of updates) {
    const before = pipeline.host_detail[indexOf(hostId)] ?? emptyHostDetail(hostId);
    const hostStage = update.stage ?? before.stage;
    if (hostStage >= pipeline.stages.length) return conflict(`pipeline '${pipeline.id}' has no stage ${hostStage}`);
    if (update.command_id === undefined) continue;
    // The rule that makes a stage run at most once on a host, whoever races to start it.
    if (before.steps.length !== hostStage) return conflict(`host '${hostId}' ${before.steps.length > hostStage ? 'already has a command' : 'has not been through the stages before'} for stage ${hostStage} of pipeline '${pipeline.id}'`);
    const command = state.commands.get(update.command_id);
    if (!command) return notFound(`command '${update.command_id}'`);
    if (command.host_id !== hostId || command.pipeline_id !== pipeline.id) return conflict(`command '${command.id}' is not host '${hostId}'s command in pipeline '${pipeline.id}'`);
  }
  return null;
}

/**
 * Rules a new change must meet as well to be accepted now; stricter than `checkChange`, which
 * keeps the rules the stored log was written under, so that replaying it never changes what it
 * folds to. Today: a hostname may not equal another host's ignoring case (`web-b` and `WEB-B`
 * would look like one host). Null when the change may be accepted.
 */
export function checkAdmission(state: FleetState, change: Change): ChangeRejection | null {
  let id: string;
  let hostname: string | undefined;
  if (change.type === 'host_added') [id, hostname] = [change.host.id, change.host.hostname];
  else if (change.type === 'host_updated') [id, hostname] = [change.id, change.fields.hostname];
  else return null;
  // Keeping one's own name (a heartbeat that repeats it) costs no scan of the fleet.
  if (hostname === undefined || state.hosts.get(id)?.hostname === hostname) return null;
  for (const host of state.hosts.values()) {
    if (host.id !== id && sameName(host.hostname, hostname)) return conflict(`hostname '${hostname}' is already used by host '${host.id}' ('${host.hostname}'; names differing only in case are the same)`);
  }
  return null;
}

/**
 * Applies one change in place. Total: a change that `checkChange` would reject is ignored.
 * Entities taken from the change are copied, unless `owned`: the caller then guarantees nobody
 * mutates the change afterwards (the server's validated copy), and the state shares its objects.
 * The reducer itself never mutates an entity in place (updates replace it), so sharing is safe.
 */
export function applyChange(state: FleetState, change: Change, owned = false): void {
  if (checkChange(state, change) === null) applyValidChange(state, change, owned);
}

/**
 * `applyChange` for a caller that has just run `checkChange(state, change)` itself and got null
 * (the server's staging step), so the check is not paid twice on the write path.
 */
export function applyValidChange(state: FleetState, change: Change, owned = false): void {
  const copy = owned ? <T>(value: T): T => value : structuredClone;
  switch (change.type) {
    case 'host_added':
      state.hosts.set(change.host.id, withHostDefaults(copy(change.host)));
      return;
    case 'host_updated': {
      const host = state.hosts.get(change.id);
      if (host) state.hosts.set(change.id, withFields(host, change.fields, 'compartments', owned));
      return;
    }
    case 'host_removed':
      state.hosts.delete(change.id);
      return;
    case 'command_started': {
      const command = withCommandDefaults(copy(change.command));
      state.commands.set(command.id, command);
      const host = state.hosts.get(command.host_id);
      if (host && !isTerminalCommandStatus(command.status)) state.hosts.set(host.id, { ...host, pending_command: command.id });
      trimTerminal(state.commands, state.limits.commands, (c) => isTerminalCommandStatus(c.status));
      return;
    }
    case 'command_updated': {
      const command = state.commands.get(change.id);
      if (!command || isTerminalCommandStatus(command.status)) return;
      state.commands.set(change.id, withFields(command, change.fields, null, owned));
      return;
    }
    case 'command_progress': {
      const command = state.commands.get(change.id);
      if (!command || isTerminalCommandStatus(command.status)) return;
      state.commands.set(change.id, {
        ...command,
        output: tail(command.output + change.output, state.limits.output_tail),
        output_size: command.output_size + change.output.length,
        ...(change.seq !== undefined && change.seq > command.output_seq ? { output_seq: change.seq } : {}),
      });
      return;
    }
    case 'command_finished': {
      const command = state.commands.get(change.id);
      if (!command || isTerminalCommandStatus(command.status)) return;
      state.commands.set(change.id, { ...command, status: change.status, exit_code: change.exit_code, finished_at: change.finished_at });
      const host = state.hosts.get(command.host_id);
      if (host && host.pending_command === command.id) state.hosts.set(host.id, { ...host, pending_command: null });
      if (command.pipeline_id !== null) recordStepOutcome(state, command, change.status, change.exit_code);
      trimTerminal(state.commands, state.limits.commands, (c) => isTerminalCommandStatus(c.status));
      return;
    }
    case 'event':
      state.events.push(copy(change.event));
      if (state.events.length > state.limits.events) state.events.splice(0, state.events.length - state.limits.events);
      return;
    case 'pipeline_started':
      state.pipelines.set(change.pipeline.id, withPipelineDefaults(copy(change.pipeline)));
      trimTerminal(state.pipelines, state.limits.pipelines, (p) => isTerminalPipelineStatus(p.status));
      return;
    case 'pipeline_updated': {
      const pipeline = state.pipelines.get(change.id);
      if (!pipeline || isTerminalPipelineStatus(pipeline.status)) return;
      const { host_detail: hostDetail, ...fields } = change.fields;
      const updated = withFields(pipeline, fields, 'host_status', owned);
      if (hostDetail !== undefined) updated.host_detail = withHostUpdates(updated, hostDetail, owned);
      state.pipelines.set(change.id, updated);
      return;
    }
    case 'pipeline_finished': {
      const pipeline = state.pipelines.get(change.id);
      if (!pipeline || isTerminalPipelineStatus(pipeline.status)) return;
      state.pipelines.set(change.id, { ...pipeline, status: change.status, finished_at: change.finished_at });
      trimTerminal(state.pipelines, state.limits.pipelines, (p) => isTerminalPipelineStatus(p.status));
      return;
    }
    case 'limits_changed': {
      state.limits = { ...change.limits };
      if (state.events.length > state.limits.events) state.events.splice(0, state.events.length - state.limits.events);
      trimTerminal(state.commands, state.limits.commands, (c) => isTerminalCommandStatus(c.status));
      trimTerminal(state.pipelines, state.limits.pipelines, (p) => isTerminalPipelineStatus(p.status));
      for (const [id, command] of state.commands) {
        const output = tail(command.output, state.limits.output_tail);
        if (output !== command.output) state.commands.set(id, { ...command, output });
      }
      return;
    }
    default:
      assertNever(change);
  }
}

/**
 * The pipeline's detail with each host's update merged into its entry: `stage` and `dropped`
 * replace, a `command_id` appends the step of the host's stage (checkChange made sure it is the
 * next one). A pipeline from before the runner gets an entry per host first.
 */
function withHostUpdates(pipeline: Pipeline, updates: Record<string, PipelineHostUpdate>, owned: boolean): PipelineHostDetail[] {
  const details = pipeline.host_detail.length === pipeline.hosts.length ? pipeline.host_detail.slice() : pipeline.hosts.map((hostId) => emptyHostDetail(hostId));
  const hostIds = Object.keys(updates);
  const indexOf = hostIndex(pipeline.hosts, hostIds.length);
  for (const hostId of hostIds) {
    const update = updates[hostId]!;
    const index = indexOf(hostId);
    const before = details[index];
    if (!before) continue;
    const after: PipelineHostDetail = { ...before };
    if (update.stage !== undefined) after.stage = update.stage;
    if (update.dropped !== undefined) after.dropped = owned ? update.dropped : structuredClone(update.dropped);
    if (update.command_id !== undefined) after.steps = [...before.steps, { command_id: update.command_id, status: 'started', exit_code: null }];
    details[index] = after;
  }
  return details;
}

/**
 * The outcome of a pipeline's command, kept in the pipeline's detail of its host: the command
 * itself may be trimmed from `commands` long before the pipeline ends, the pipeline's record of
 * it may not. Deterministic like the rest of the fold (pending_command is set the same way).
 */
function recordStepOutcome(state: FleetState, command: Command, status: Command['status'], exitCode: number | null): void {
  const pipeline = state.pipelines.get(command.pipeline_id!);
  if (!pipeline || isTerminalPipelineStatus(pipeline.status)) return;
  const index = pipeline.host_detail.length > 0 ? pipeline.hosts.indexOf(command.host_id) : -1;
  const detail = pipeline.host_detail[index];
  const step = detail?.steps.findIndex((s) => s.command_id === command.id) ?? -1;
  if (!detail || step < 0) return;
  const steps = [...detail.steps];
  steps[step] = { command_id: command.id, status: status as PipelineHostDetail['steps'][number]['status'], exit_code: exitCode };
  const details = pipeline.host_detail.slice();
  details[index] = { ...detail, steps };
  state.pipelines.set(pipeline.id, { ...pipeline, host_detail: details });
}

/**
 * Keeps every non-terminal entry and the `keep` most recently started terminal ones: the
 * oldest terminal entries in insertion order go first.
 */
function trimTerminal<T>(entries: Map<string, T>, keep: number, isTerminal: (entry: T) => boolean): void {
  let terminal = 0;
  for (const entry of entries.values()) if (isTerminal(entry)) terminal++;
  for (const [id, entry] of entries) {
    if (terminal <= keep) return;
    if (isTerminal(entry)) {
      entries.delete(id);
      terminal--;
    }
  }
}

/** The last `max` UTF-16 units of `text`, never starting inside a surrogate pair. */
export function tail(text: string, max: number): string {
  if (text.length <= max) return text;
  let start = text.length - max;
  const code = text.charCodeAt(start);
  if (code >= 0xdc00 && code <= 0xdfff) start++;
  return text.slice(start);
}

/**
 * `entity` with each defined field of `fields` replaced, and the `merged` field's entries merged
 * into its own. Only fields the entity already has are taken: an update never adds a key (nor
 * `__proto__`). This runs for every heartbeat, so it avoids rest/spread of the fields object.
 */
function withFields<T extends object>(entity: T, fields: object, merged: (keyof T & string) | null, owned: boolean): T {
  const updated = { ...entity };
  const target = updated as Record<string, unknown>;
  const source = fields as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    const value = source[key];
    if (value === undefined || !Object.hasOwn(entity, key)) continue;
    const taken = owned || typeof value !== 'object' || value === null ? value : structuredClone(value);
    target[key] = key === merged ? { ...(entity[merged] as object), ...definedOnly(taken as object) } : taken;
  }
  return updated;
}

function definedOnly<T extends object>(fields: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(fields) as (keyof T)[]) {
    if (fields[key] !== undefined) out[key] = fields[key];
  }
  return out;
}

function notFound(what: string): ChangeRejection {
  return { code: 'not_found', message: `unknown ${what}` };
}

function conflict(message: string): ChangeRejection {
  return { code: 'conflict', message };
}

export function assertNever(value: never): never {
  throw new Error(`unhandled variant: ${JSON.stringify(value)}`);
}
