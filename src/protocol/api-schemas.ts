// The request bodies of the HTTP API (api.ts lists the routes): one strict schema per route that
// takes a body. Entity fields reuse the protocol schemas, so a body can never hold what a delta
// could not carry. The server's front door parses every body with these before a handler runs.
import { z } from 'zod';
import type { ApiRoute } from './api.js';
import { PIPELINE_PRESET_NAMES, TOKEN_ROLES, USER_ROLES } from './constants.js';
import {
  CompartmentsSchema,
  COMMAND_TERMINAL_STATUSES,
  DetailsSchema,
  displayNameSchema,
  EVENT_LEVELS,
  EventLogEntrySchema,
  HostFieldsSchema,
  HostSchema,
  IdSchema,
  OPS,
  PIPELINE_TERMINAL_STATUSES,
  PipelineFieldsSchema,
  PipelineSchema,
  UserNameSchema,
} from './schema.js';

export const CreateHostBody = z.strictObject({
  hostname: HostSchema.shape.hostname,
  id: IdSchema.optional(),
  host_type: HostSchema.shape.host_type.default('nixos'),
  status: HostSchema.shape.status.default('unknown'),
  last_seen: HostSchema.shape.last_seen.default(null),
  agent_version: HostSchema.shape.agent_version.default(null),
  generation: HostSchema.shape.generation.default(null),
  os_version: HostSchema.shape.os_version.default(null),
  nixpkgs_version: HostSchema.shape.nixpkgs_version.default(null),
  metrics: HostSchema.shape.metrics.default(null),
  compartments: CompartmentsSchema.partial().default({}),
});

export const UpdateHostBody = HostFieldsSchema;

export const StartCommandBody = z.strictObject({
  host_id: IdSchema,
  op: z.enum(OPS),
  /**
   * Only null (or absent): the server runs pipelines and starts their commands itself. Still an
   * id in the type, so a client that sends one learns why it is refused instead of "unknown key".
   */
  pipeline_id: IdSchema.nullable()
    .default(null)
    .refine((id) => id === null, 'a command cannot join a pipeline: the server runs pipelines and starts their commands (POST /api/pipelines)'),
  /** For a host without a live agent: wait for it (202) instead of 409 `host_offline`. */
  queue: z.boolean().default(false),
});

/** One chunk of command output; the request body limit bounds it as well. */
export const CommandOutputBody = z.strictObject({
  output: z.string().min(1).max(256 * 1024),
});

export const FinishCommandBody = z.strictObject({
  status: z.enum(COMMAND_TERMINAL_STATUSES),
  exit_code: z.number().int().nullable(),
});

export const CreatePipelineBody = z
  .strictObject({
    name: PipelineSchema.shape.name,
    id: IdSchema.optional(),
    hosts: PipelineSchema.shape.hosts.refine((hosts) => new Set(hosts).size === hosts.length, 'must not repeat a host'),
    /** The ops to run, in order; or name a `preset` instead. */
    stages: PipelineSchema.shape.stages.optional(),
    preset: z.enum(PIPELINE_PRESET_NAMES).optional(),
    parallel: PipelineSchema.shape.parallel.unwrap().optional(),
    canary: z.number().int().min(1).optional(),
    max_failures: z.number().int().min(0).optional(),
  })
  .superRefine((body, ctx) => {
    if ((body.stages === undefined) === (body.preset === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['stages'], message: `give either stages or a preset (${PIPELINE_PRESET_NAMES.join(', ')}), ${body.stages === undefined ? 'not neither' : 'not both'}` });
    }
    const hosts = body.hosts.length;
    if (body.canary !== undefined && body.canary >= hosts) {
      ctx.addIssue({ code: 'custom', path: ['canary'], message: `must leave hosts after the canary: at most ${hosts - 1} of these ${hosts} hosts` });
    }
    if (body.max_failures !== undefined && body.max_failures >= hosts) {
      ctx.addIssue({ code: 'custom', path: ['max_failures'], message: `must be less than the ${hosts} hosts, or it never stops the rollout; leave it out for no limit` });
    }
  });

/** Bodies of the routes by which a client drove a pipeline by hand; they answer 405 now (the server runs pipelines). */
export const UpdatePipelineBody = PipelineFieldsSchema;
export const FinishPipelineBody = z.strictObject({
  status: z.enum(PIPELINE_TERMINAL_STATUSES),
});

export const CreateEventBody = z.strictObject({
  level: z.enum(EVENT_LEVELS),
  category: EventLogEntrySchema.shape.category,
  message: EventLogEntrySchema.shape.message,
  actor: EventLogEntrySchema.shape.actor.default(null),
  host_id: IdSchema.nullable().default(null),
  action: EventLogEntrySchema.shape.action.default(null),
  details: DetailsSchema.nullable().default(null),
});

const Password = z.string().min(1).max(1024);

export const LoginBody = z.strictObject({
  username: z.string().min(1).max(64),
  password: Password,
  totp: z.string().max(16).optional(),
});

export const CreateTokenBody = z.strictObject({
  name: displayNameSchema(100),
  role: z.enum(TOKEN_ROLES),
  host_id: IdSchema.optional(),
});

export const CreateUserBody = z.strictObject({
  name: UserNameSchema,
  role: z.enum(USER_ROLES),
  password: Password,
});

export const UpdateUserBody = z
  .strictObject({ role: z.enum(USER_ROLES), password: Password })
  .partial()
  .refine((body) => Object.keys(body).length > 0, 'must name role or password');

/** Proof of presence for changing a second factor: a session's password (and code, to turn its own off). */
export const TotpChangeBody = z.strictObject({
  password: Password.optional(),
  totp: z.string().max(16).optional(),
});

export interface BodyRule {
  schema: z.ZodType;
  /** A lower limit than the server's body limit (credentials are small). */
  maxBytes?: number;
  /** A request with no body at all is read as `{}` (a bare DELETE), not refused with 415. */
  emptyAsObject?: boolean;
}

const CREDENTIALS = 16 * 1024;

/** The body each route takes; routes not listed take none. */
export const API_BODIES = {
  login: { schema: LoginBody, maxBytes: CREDENTIALS },
  createHost: { schema: CreateHostBody },
  updateHost: { schema: UpdateHostBody },
  startCommand: { schema: StartCommandBody },
  appendOutput: { schema: CommandOutputBody },
  finishCommand: { schema: FinishCommandBody },
  createPipeline: { schema: CreatePipelineBody },
  createEvent: { schema: CreateEventBody },
  createToken: { schema: CreateTokenBody, maxBytes: CREDENTIALS },
  createUser: { schema: CreateUserBody, maxBytes: CREDENTIALS },
  updateUser: { schema: UpdateUserBody, maxBytes: CREDENTIALS },
  enableTotp: { schema: TotpChangeBody, maxBytes: CREDENTIALS, emptyAsObject: true },
  disableTotp: { schema: TotpChangeBody, maxBytes: CREDENTIALS, emptyAsObject: true },
} as const satisfies Partial<Record<ApiRoute, BodyRule>>;

/** What the retired routes took, for clients not yet moved off them: the server reads none of it. */
type RetiredBodies = { updatePipeline: typeof UpdatePipelineBody; finishPipeline: typeof FinishPipelineBody };

type Bodies = typeof API_BODIES;
/** What a handler gets: the parsed body (defaults filled in), or undefined for a route without one. */
export type ApiBody<R extends ApiRoute> = R extends keyof Bodies ? z.output<Bodies[R]['schema']> : undefined;
/** What a client sends (defaults may be left out). */
export type ApiRequest<R extends ApiRoute> = R extends keyof Bodies ? z.input<Bodies[R]['schema']> : R extends keyof RetiredBodies ? z.input<RetiredBodies[R]> : undefined;
