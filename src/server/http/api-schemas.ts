// Schemas of the HTTP API request bodies. Entity fields reuse the protocol schemas, so an API
// body can never hold what a delta could not carry.
import { z } from 'zod';
import {
  CompartmentsSchema,
  COMMAND_TERMINAL_STATUSES,
  DetailsSchema,
  EVENT_LEVELS,
  EventLogEntrySchema,
  HostFieldsSchema,
  HostSchema,
  IdSchema,
  OPS,
  PIPELINE_TERMINAL_STATUSES,
  PipelineFieldsSchema,
  PipelineSchema,
} from '../../protocol/schema.js';

export const CreateHostBody = z.strictObject({
  hostname: HostSchema.shape.hostname,
  id: IdSchema.optional(),
  host_type: HostSchema.shape.host_type.default('nixos'),
  status: HostSchema.shape.status.default('unknown'),
  last_seen: HostSchema.shape.last_seen.default(null),
  agent_version: HostSchema.shape.agent_version.default(null),
  generation: HostSchema.shape.generation.default(null),
  metrics: HostSchema.shape.metrics.default(null),
  compartments: CompartmentsSchema.partial().default({}),
});

export const UpdateHostBody = HostFieldsSchema;

export const StartCommandBody = z.strictObject({
  host_id: IdSchema,
  op: z.enum(OPS),
  pipeline_id: IdSchema.nullable().default(null),
});

/** One chunk of command output; the request body limit bounds it as well. */
export const CommandOutputBody = z.strictObject({
  output: z.string().min(1).max(256 * 1024),
});

export const FinishCommandBody = z.strictObject({
  status: z.enum(COMMAND_TERMINAL_STATUSES),
  exit_code: z.number().int().nullable(),
});

export const CreatePipelineBody = z.strictObject({
  name: PipelineSchema.shape.name,
  id: IdSchema.optional(),
  hosts: PipelineSchema.shape.hosts.refine((hosts) => new Set(hosts).size === hosts.length, 'must not repeat a host'),
  stages: PipelineSchema.shape.stages,
});

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

export type CreateHostInput = z.infer<typeof CreateHostBody>;
export type StartCommandInput = z.infer<typeof StartCommandBody>;
export type CreatePipelineInput = z.infer<typeof CreatePipelineBody>;
export type CreateEventInput = z.infer<typeof CreateEventBody>;
