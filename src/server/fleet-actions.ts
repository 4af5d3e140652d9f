// Turns validated requests into Changes: mints ids and stamps times here, before the change
// reaches the reducer, so the change log alone determines the state (no clock in the fold).
import { randomUUID } from 'node:crypto';
import type { Change, Command, Compartments, EventLogEntry, Host, Op, Pipeline } from '../protocol/schema.js';
import { COMPARTMENT_NAMES, PIPELINE_PRESETS } from '../protocol/schema.js';
import type { ApiBody } from '../protocol/api-schemas.js';
import { isId } from '../protocol/names.js';

type CreateHostInput = ApiBody<'createHost'>;
/** A command of the API (no pipeline) or of the pipeline runner. */
type StartCommandInput = { host_id: string; op: Op; pipeline_id: string | null };
type CreatePipelineInput = ApiBody<'createPipeline'>;
type CreateEventInput = ApiBody<'createEvent'>;

export interface ActionContext {
  now: () => Date;
  newId: (prefix: string) => string;
}

export const defaultActionContext: ActionContext = {
  now: () => new Date(),
  newId: (prefix) => `${prefix}-${randomUUID()}`,
};

export function hostAdded(input: CreateHostInput, ctx: ActionContext): Change & { type: 'host_added' } {
  const compartments = Object.fromEntries(
    COMPARTMENT_NAMES.map((name) => [name, input.compartments[name] ?? { status: 'unknown', message: '', checked_at: null }]),
  ) as Compartments;
  const host: Host = {
    id: input.id ?? (isId(input.hostname) ? input.hostname : ctx.newId('host')),
    hostname: input.hostname,
    host_type: input.host_type,
    status: input.status,
    last_seen: input.last_seen,
    agent_version: input.agent_version,
    generation: input.generation,
    os_version: input.os_version,
    nixpkgs_version: input.nixpkgs_version,
    metrics: input.metrics,
    pending_command: null,
    compartments,
    created_at: iso(ctx),
  };
  return { type: 'host_added', host };
}

/** A new command, `pending` until its host's agent starts it (`command_updated` then says `running`). */
export function commandStarted(input: Pick<StartCommandInput, 'host_id' | 'op' | 'pipeline_id'>, ctx: ActionContext): Change & { type: 'command_started' } {
  const command: Command = {
    id: ctx.newId('cmd'),
    host_id: input.host_id,
    op: input.op,
    status: 'pending',
    created_at: iso(ctx),
    started_at: null,
    finished_at: null,
    exit_code: null,
    pipeline_id: input.pipeline_id,
    output: '',
    output_size: 0,
    sent_at: null,
    pid: null,
    stop_requested_at: null,
    output_seq: 0,
  };
  return { type: 'command_started', command };
}

/** A pipeline the server runs, `running` from the start: the runner takes it from there. */
export function pipelineStarted(input: CreatePipelineInput, ctx: ActionContext): Change & { type: 'pipeline_started' } {
  const at = iso(ctx);
  const pipeline: Pipeline = {
    id: input.id ?? ctx.newId('pipe'),
    name: input.name,
    hosts: input.hosts,
    stages: input.stages ?? [...PIPELINE_PRESETS[input.preset!]],
    current_stage: 0,
    status: 'running',
    host_status: Object.fromEntries(input.hosts.map((host) => [host, 'pending' as const])),
    created_at: at,
    started_at: at,
    finished_at: null,
    run_by: 'server',
    preset: input.preset ?? null,
    parallel: input.parallel ?? null,
    canary: input.canary ?? null,
    max_failures: input.max_failures ?? null,
    phase: input.canary !== undefined ? 'canary' : 'rollout',
    cancel_requested_at: null,
    stop_reason: null,
    host_detail: input.hosts.map((host) => ({ host, stage: 0, steps: [], dropped: null })),
  };
  return { type: 'pipeline_started', pipeline };
}

export function eventLogged(input: CreateEventInput, ctx: ActionContext): Change & { type: 'event' } {
  const event: EventLogEntry = { id: ctx.newId('ev'), timestamp: iso(ctx), ...input };
  return { type: 'event', event };
}

export function iso(ctx: ActionContext): string {
  return ctx.now().toISOString();
}
