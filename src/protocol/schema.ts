// Schemas of the fleet entities and of every Change: the single source of truth for their
// shape. Types are inferred from them. Shared by the server (input validation) and the client
// (types only); no Node and no DOM here.
import { z } from 'zod';
import {
  CHANGE_TYPES,
  COMMAND_ACTIVE_STATUSES,
  COMMAND_TERMINAL_STATUSES,
  COMPARTMENT_STATUSES,
  EVENT_LEVELS,
  HOST_STATUSES,
  HOST_TYPES,
  OPS,
  PIPELINE_ACTIVE_STATUSES,
  PIPELINE_DROP_REASONS,
  PIPELINE_HOST_STATUSES,
  PIPELINE_PHASES,
  PIPELINE_PRESET_NAMES,
  PIPELINE_RUNNERS,
  PIPELINE_STEP_STATUSES,
  PIPELINE_STOP_REASONS,
  PIPELINE_TERMINAL_STATUSES,
} from './constants.js';
import { DISPLAY_NAME_RULE, HOSTNAME_RULE, ID_PATTERN, ID_RULE, isDisplayName, isHostname, isUserName, RESERVED_KEYS, USER_NAME_RULE } from './names.js';

export * from './constants.js';
export * from './names.js';

/** Identifiers of hosts, commands, pipelines and events: safe in URLs, HTML and object keys. */
export const IdSchema = z
  .string()
  .regex(ID_PATTERN, ID_RULE)
  .refine((id) => !RESERVED_KEYS.has(id), 'is a reserved name');

/** A host's name as it may be set now (names stored before the rule are kept as they are). */
export const HostnameSchema = z.string().refine(isHostname, HOSTNAME_RULE);

export const UserNameSchema = z.string().refine(isUserName, USER_NAME_RULE);

/** A free-text name people read (pipelines, tokens), at most `max` characters. */
export function displayNameSchema(max: number) {
  return z.string().min(1).max(max).refine(isDisplayName, DISPLAY_NAME_RULE);
}

/** ISO-8601 UTC with a trailing Z, the only timestamp format on the wire. */
export const TimestampSchema = z.iso.datetime({ offset: false });

const Percent = z.number().finite().min(0).max(100);

export const MetricsSchema = z.strictObject({
  cpu: Percent,
  ram: Percent,
  swap: Percent,
  load: z.number().finite().min(0),
});

export const CompartmentSchema = z.strictObject({
  status: z.enum(COMPARTMENT_STATUSES),
  message: z.string().max(1000),
  checked_at: TimestampSchema.nullable(),
});

export const CompartmentsSchema = z.strictObject({
  git: CompartmentSchema,
  lock: CompartmentSchema,
  system: CompartmentSchema,
  tests: CompartmentSchema,
});

const ShortText = z.string().max(200);

export const HostSchema = z.strictObject({
  id: IdSchema,
  hostname: HostnameSchema,
  host_type: z.enum(HOST_TYPES),
  status: z.enum(HOST_STATUSES),
  last_seen: TimestampSchema.nullable(),
  agent_version: ShortText.nullable(),
  generation: ShortText.nullable(),
  /** What the agent registered with (null: never said). Absent in logs written before agents: read as null. */
  os_version: ShortText.nullable(),
  nixpkgs_version: ShortText.nullable(),
  metrics: MetricsSchema.nullable(),
  /** Id of the command running on this host, or null: set and cleared by the command changes. */
  pending_command: IdSchema.nullable(),
  compartments: CompartmentsSchema,
  created_at: TimestampSchema,
});

/**
 * What `host_updated.fields` may carry. `compartments` merges per compartment; every other
 * field replaces. `id`, `created_at` and `pending_command` are owned by the server.
 */
export const HostFieldsSchema = z
  .strictObject({
    hostname: HostSchema.shape.hostname,
    host_type: HostSchema.shape.host_type,
    status: HostSchema.shape.status,
    last_seen: HostSchema.shape.last_seen,
    agent_version: HostSchema.shape.agent_version,
    generation: HostSchema.shape.generation,
    os_version: HostSchema.shape.os_version,
    nixpkgs_version: HostSchema.shape.nixpkgs_version,
    metrics: HostSchema.shape.metrics,
    compartments: CompartmentsSchema.partial(),
  })
  .partial()
  .refine((fields) => Object.keys(fields).length > 0, 'must name at least one field');

export const CommandSchema = z.strictObject({
  id: IdSchema,
  host_id: IdSchema,
  op: z.enum(OPS),
  status: z.enum([...COMMAND_ACTIVE_STATUSES, ...COMMAND_TERMINAL_STATUSES]),
  created_at: TimestampSchema,
  started_at: TimestampSchema.nullable(),
  finished_at: TimestampSchema.nullable(),
  exit_code: z.number().int().nullable(),
  pipeline_id: IdSchema.nullable(),
  /** The last `limits.output_tail` characters of the output; the whole log is served over HTTP. */
  output: z.string(),
  /** Characters of output received in total, so a client knows when `output` is only a tail. */
  output_size: z.number().int().min(0),
  /**
   * When the server sent it to the host's agent; null while it waits for one (a command queued
   * for an offline host). A command is sent at most once.
   */
  sent_at: TimestampSchema.nullable(),
  /** The process id the agent runs the op as (its process group), once it said so. */
  pid: z.number().int().min(0).nullable(),
  /** When an operator asked to stop it; the agent's next `status` ends it `cancelled`. */
  stop_requested_at: TimestampSchema.nullable(),
  /** The last output line number (`seq`) stored, for an agent that resends after a reconnect. */
  output_seq: z.number().int().min(0),
});

/**
 * What `command_updated.fields` may carry: the lifecycle steps between `command_started` and
 * `command_finished` (pending → running, the agent's pid, a stop request, the exit code an
 * agent reported before it restarts itself after a switch).
 */
export const CommandFieldsSchema = z
  .strictObject({
    status: z.literal('running'),
    started_at: TimestampSchema,
    sent_at: TimestampSchema,
    pid: CommandSchema.shape.pid,
    stop_requested_at: CommandSchema.shape.stop_requested_at,
    exit_code: CommandSchema.shape.exit_code,
  })
  .partial()
  .refine((fields) => Object.keys(fields).length > 0, 'must name at least one field');

/**
 * A record whose input may not hold a reserved key. zod's record skips an own `__proto__` key
 * silently (so `{"__proto__": 1}` would pass as `{}`): refuse it before zod sees it.
 */
function recordOf<K extends z.ZodType<string>, V extends z.ZodType>(key: K, value: V) {
  return z
    .custom<unknown>((input) => typeof input !== 'object' || input === null || !Object.keys(input).some((k) => RESERVED_KEYS.has(k)), {
      message: 'must not use the reserved keys __proto__, constructor or prototype',
    })
    .pipe(z.record(key, value));
}

const HostStatusMap = recordOf(IdSchema, z.enum(PIPELINE_HOST_STATUSES));

const StageIndex = z.number().int().min(0).max(49);

/** A host's command of one stage: recorded with `command_started`, its outcome by the fold at `command_finished`. */
export const PipelineStepSchema = z.strictObject({
  command_id: IdSchema,
  status: z.enum(PIPELINE_STEP_STATUSES),
  exit_code: z.number().int().nullable(),
});

/** Why a host left the pipeline, and where. */
export const PipelineDropSchema = z.strictObject({
  reason: z.enum(PIPELINE_DROP_REASONS),
  /** The stage it was in, and that stage's op. */
  stage: StageIndex,
  op: z.enum(OPS),
  /** Its command of that stage, if one was started (null: offline, or never reached). */
  command_id: IdSchema.nullable(),
  exit_code: z.number().int().nullable(),
  message: z.string().min(1).max(500),
});

/** One host's progress through a pipeline the server runs. */
export const PipelineHostDetailSchema = z.strictObject({
  host: IdSchema,
  /** The stage it is in (waiting for, or running), or ended in. */
  stage: StageIndex,
  /** Its command of each stage it started, by stage index: `steps[i]` is stage i. */
  steps: z.array(PipelineStepSchema).max(50),
  dropped: PipelineDropSchema.nullable(),
});

/**
 * What `pipeline_updated.fields.host_detail` may say about one host: its `stage`, the command
 * started for that stage (appended as its step; refused if the stage has one already, so no
 * stage runs twice on a host), why it was dropped.
 */
export const PipelineHostUpdateSchema = z
  .strictObject({
    stage: StageIndex,
    command_id: IdSchema,
    dropped: PipelineDropSchema,
  })
  .partial()
  .refine((fields) => Object.keys(fields).length > 0, 'must name at least one field');

export const PipelineSchema = z.strictObject({
  id: IdSchema,
  name: displayNameSchema(200),
  hosts: z.array(IdSchema).min(1).max(10_000),
  stages: z.array(z.enum(OPS)).min(1).max(50),
  /** Index into `stages` of the stage running now (of the current phase's batch). */
  current_stage: z.number().int().min(0),
  status: z.enum([...PIPELINE_ACTIVE_STATUSES, ...PIPELINE_TERMINAL_STATUSES]),
  host_status: HostStatusMap,
  created_at: TimestampSchema,
  started_at: TimestampSchema.nullable(),
  finished_at: TimestampSchema.nullable(),
  // Fields of pipelines the server runs (absent in logs written before the runner: filled in by the fold).
  /** `server`: the runner drives it; `client`: an old pipeline driven by hand, left alone. */
  run_by: z.enum(PIPELINE_RUNNERS),
  /** The preset its stages came from, or null when they were given. */
  preset: z.enum(PIPELINE_PRESET_NAMES).nullable(),
  /** At most this many commands of a stage at once (null: no limit). */
  parallel: z.number().int().min(1).max(10_000).nullable(),
  /** The first `canary` hosts go through every stage before the others start (null: no canary). */
  canary: z.number().int().min(1).max(9_999).nullable(),
  /** The rollout stops once more than this many hosts failed (null: never). */
  max_failures: z.number().int().min(0).max(9_999).nullable(),
  phase: z.enum(PIPELINE_PHASES),
  /** When an operator asked to cancel it; it ends `cancelled` once its running commands ended. */
  cancel_requested_at: TimestampSchema.nullable(),
  /** Why the rollout stopped early, or null. */
  stop_reason: z.enum(PIPELINE_STOP_REASONS).nullable(),
  /**
   * Each host's stage, its command per stage, and why it was dropped: one entry per host, in the
   * order of `hosts` (an array, so that the fold's copy on each update is cheap), or none for a
   * pipeline from before the runner.
   */
  host_detail: z.array(PipelineHostDetailSchema).max(10_000),
});

export const PipelineFieldsSchema = z
  .strictObject({
    current_stage: PipelineSchema.shape.current_stage,
    status: z.enum(PIPELINE_ACTIVE_STATUSES),
    /** Merged per host. */
    host_status: HostStatusMap,
    phase: PipelineSchema.shape.phase,
    cancel_requested_at: TimestampSchema,
    stop_reason: z.enum(PIPELINE_STOP_REASONS),
    /** Merged per host, and within a host per field (a `command_id` appends a step). */
    host_detail: recordOf(IdSchema, PipelineHostUpdateSchema),
  })
  .partial()
  .refine((fields) => Object.keys(fields).length > 0, 'must name at least one field');

const DetailKey = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'keys must be 1-64 characters of A-Z a-z 0-9 _ . -')
  .refine((key) => !RESERVED_KEYS.has(key), 'is a reserved name');

/** Event details: a flat map of scalars, so nothing nested or executable rides along. */
export const DetailsSchema = recordOf(DetailKey, z.union([z.string().max(2000), z.number().finite(), z.boolean(), z.null()]))
  .refine((details) => Object.keys(details).length <= 32, 'at most 32 keys');

export const EventLogEntrySchema = z.strictObject({
  id: IdSchema,
  timestamp: TimestampSchema,
  category: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a lowercase word of at most 32 characters'),
  level: z.enum(EVENT_LEVELS),
  actor: ShortText.nullable(),
  host_id: IdSchema.nullable(),
  action: ShortText.nullable(),
  message: z.string().min(1).max(2000),
  details: DetailsSchema.nullable(),
});

/** Trimming limits: part of the state, so the fold is the same wherever it runs. */
export const LimitsSchema = z.strictObject({
  /** Events kept: the last N. */
  events: z.number().int().min(1).max(100_000),
  /** Terminal commands kept, besides every non-terminal one. */
  commands: z.number().int().min(0).max(100_000),
  /** Terminal pipelines kept, besides every non-terminal one. */
  pipelines: z.number().int().min(0).max(100_000),
  /** Characters of output kept per command in the state. */
  output_tail: z.number().int().min(0).max(16 * 1024 * 1024),
});

export const ChangeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('host_added'), host: HostSchema }),
  z.strictObject({ type: z.literal('host_updated'), id: IdSchema, fields: HostFieldsSchema }),
  z.strictObject({ type: z.literal('host_removed'), id: IdSchema }),
  z.strictObject({ type: z.literal('command_started'), command: CommandSchema }),
  z.strictObject({ type: z.literal('command_updated'), id: IdSchema, fields: CommandFieldsSchema }),
  z.strictObject({
    type: z.literal('command_progress'),
    id: IdSchema,
    output: z.string().min(1),
    /** The agent's line number of the last line in `output`, when it numbers them. */
    seq: z.number().int().min(1).optional(),
  }),
  z.strictObject({
    type: z.literal('command_finished'),
    id: IdSchema,
    status: z.enum(COMMAND_TERMINAL_STATUSES),
    exit_code: z.number().int().nullable(),
    finished_at: TimestampSchema,
  }),
  z.strictObject({ type: z.literal('event'), event: EventLogEntrySchema }),
  z.strictObject({ type: z.literal('pipeline_started'), pipeline: PipelineSchema }),
  z.strictObject({ type: z.literal('pipeline_updated'), id: IdSchema, fields: PipelineFieldsSchema }),
  z.strictObject({
    type: z.literal('pipeline_finished'),
    id: IdSchema,
    status: z.enum(PIPELINE_TERMINAL_STATUSES),
    finished_at: TimestampSchema,
  }),
  z.strictObject({ type: z.literal('limits_changed'), limits: LimitsSchema }),
]);

export const FullStateSchema = z.strictObject({
  hosts: z.array(HostSchema),
  commands: z.array(CommandSchema),
  pipelines: z.array(PipelineSchema),
  events: z.array(EventLogEntrySchema),
  limits: LimitsSchema,
});

export type Metrics = z.infer<typeof MetricsSchema>;
export type Compartment = z.infer<typeof CompartmentSchema>;
export type Compartments = z.infer<typeof CompartmentsSchema>;
export type Host = z.infer<typeof HostSchema>;
export type HostFields = z.infer<typeof HostFieldsSchema>;
export type Command = z.infer<typeof CommandSchema>;
export type CommandFields = z.infer<typeof CommandFieldsSchema>;
export type Pipeline = z.infer<typeof PipelineSchema>;
export type PipelineFields = z.infer<typeof PipelineFieldsSchema>;
export type PipelineStep = z.infer<typeof PipelineStepSchema>;
export type PipelineDrop = z.infer<typeof PipelineDropSchema>;
export type PipelineHostDetail = z.infer<typeof PipelineHostDetailSchema>;
export type PipelineHostUpdate = z.infer<typeof PipelineHostUpdateSchema>;
export type EventLogEntry = z.infer<typeof EventLogEntrySchema>;
export type Limits = z.infer<typeof LimitsSchema>;
export type Change = z.infer<typeof ChangeSchema>;
export type ChangeType = Change['type'];
// CHANGE_TYPES (zod-free, for the client's decoder) and ChangeSchema must list the same types.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const changeTypesMatch: Same<ChangeType, (typeof CHANGE_TYPES)[number]> = true;
void changeTypesMatch;
export type FullState = z.infer<typeof FullStateSchema>;
export type Op = (typeof OPS)[number];
export type CommandStatus = Command['status'];
export type PipelineStatus = Pipeline['status'];
