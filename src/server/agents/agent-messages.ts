// Reads what an agent sends: the envelope and each payload, accepted exactly as the original Go
// agent writes them ("" for an unset string, null pointers, absent omitempty fields, floats),
// and maps the values our schema cannot hold as sent to their nearest meaning (the table is in
// docs/AGENT-PROTOCOL.md, "Value mapping"). Never throws: a frame is a message or a reason.
import { z } from 'zod';
import type { AgentToServer } from '../../protocol/agent-wire.js';
import { AGENT_MESSAGE_TYPES } from '../../protocol/agent-wire.js';
import { COMPARTMENT_NAMES, COMPARTMENT_STATUSES, HOST_TYPES, type Compartment, type Compartments, type Metrics } from '../../protocol/schema.js';

/** A string the Go agent may leave unset (""), cut to what our fields hold. */
const goString = (max: number) => z.string().transform((s) => s.slice(0, max)).catch('');
const optionalGoString = (max: number) => goString(max).optional().default('');
const count = z.number().finite().catch(0);

const WireCompartment = z
  .object({ status: goString(32), message: goString(1000), checked_at: goString(64) })
  .partial()
  .nullable()
  .optional()
  .catch(null);
const WireUpdateStatus = z.object({ git: WireCompartment, lock: WireCompartment, system: WireCompartment, tests: WireCompartment }).nullable().optional().catch(null);
const WireMetrics = z.object({ cpu: count, ram: count, swap: count, load: count }).nullable().optional().catch(null);

const Register = z.object({
  hostname: z.string().min(1).max(253),
  host_type: optionalGoString(16),
  agent_version: optionalGoString(200),
  os_version: optionalGoString(200),
  nixpkgs_version: optionalGoString(200),
  generation: optionalGoString(200),
  heartbeat_interval: z.number().finite().positive().max(3600).optional().catch(undefined),
  source_commit: optionalGoString(200),
  store_path: optionalGoString(400),
  binary_hash: optionalGoString(200),
});

const Heartbeat = z.object({
  generation: optionalGoString(200),
  nixpkgs_version: optionalGoString(200),
  pending_command: z.string().max(64).nullable().optional().catch(null),
  command_pid: z.number().int().min(0).nullable().optional().catch(null),
  metrics: WireMetrics,
  update_status: WireUpdateStatus,
  source_commit: optionalGoString(200),
  store_path: optionalGoString(400),
});

const Output = z.object({
  // One line; a longer one is cut (the output cap still applies to the whole log).
  line: z.string().transform((s) => s.slice(0, 64 * 1024)),
  stream: optionalGoString(16),
  command: optionalGoString(64),
  is_error: z.boolean().optional().catch(false),
  seq: z.number().int().min(1).optional().catch(undefined),
});

const Status = z.object({
  status: goString(32),
  command: optionalGoString(64),
  exit_code: z.number().int().optional().catch(undefined),
  message: optionalGoString(1000),
  generation: optionalGoString(200),
});

const CommandRejected = z.object({
  reason: optionalGoString(500),
  current_command: optionalGoString(64),
  current_pid: z.number().int().optional().catch(undefined),
});

const Progress = z.object({ progress: z.record(z.string(), z.unknown()).catch({}) });
const TestProgress = z.object({ current: count, total: count, passed: count, running: z.boolean().catch(false), result: optionalGoString(500) });
const CommandComplete = z.object({ command: optionalGoString(64), exit_code: z.number().int().optional().catch(undefined), fresh_status: WireUpdateStatus });

const PAYLOADS = {
  register: Register,
  heartbeat: Heartbeat,
  output: Output,
  status: Status,
  command_rejected: CommandRejected,
  operation_progress: Progress,
  test_progress: TestProgress,
  command_complete: CommandComplete,
} as const;

export type AgentMessage = { [K in keyof typeof PAYLOADS]: { type: K; payload: z.output<(typeof PAYLOADS)[K]> } }[keyof typeof PAYLOADS];
export type AgentPayload<K extends AgentMessage['type']> = Extract<AgentMessage, { type: K }>['payload'];

// The parsed shapes stay close to the wire types of agent-wire.ts.
type Covers<T extends keyof AgentToServer> = T;
void (0 as unknown as Covers<AgentMessage['type']>);

export type ParsedAgentFrame = { ok: true; message: AgentMessage } | { ok: false; unknownType: boolean; reason: string };

export function parseAgentFrame(text: string): ParsedAgentFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, unknownType: false, reason: 'not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || typeof (raw as { type?: unknown }).type !== 'string') {
    return { ok: false, unknownType: false, reason: 'expected {"type": string, "payload": object}' };
  }
  const { type, payload } = raw as { type: string; payload?: unknown };
  if (!(AGENT_MESSAGE_TYPES as readonly string[]).includes(type)) return { ok: false, unknownType: true, reason: `unknown type ${JSON.stringify(type.slice(0, 64))}` };
  const result = PAYLOADS[type as keyof typeof PAYLOADS].safeParse(payload ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    return { ok: false, unknownType: false, reason: `${type}: ${issue ? `${issue.path.join('.') || 'payload'}: ${issue.message}` : 'invalid payload'}` };
  }
  return { ok: true, message: { type, payload: result.data } as AgentMessage };
}

// ── value mapping ──────────────────────────────────────────────────────────────────────────────

/** `nixos`/`macos` as sent; anything else (or "") is `other`. */
export function hostTypeOf(sent: string): (typeof HOST_TYPES)[number] {
  return sent === 'nixos' || sent === 'macos' ? sent : 'other';
}

/** "" → null: our fields say "never said" with null. */
export function nullIfEmpty(value: string): string | null {
  return value === '' ? null : value;
}

/** Percentages clamped to 0–100 and the load to ≥ 0; NaN or missing becomes 0. */
export function metricsOf(sent: { cpu: number; ram: number; swap: number; load: number } | null | undefined): Metrics | null {
  if (!sent) return null;
  const percent = (n: number) => Math.min(100, Math.max(0, n));
  return { cpu: percent(sent.cpu), ram: percent(sent.ram), swap: percent(sent.swap), load: Math.max(0, sent.load) };
}

type WireCompartmentValue = { status?: string; message?: string; checked_at?: string } | null | undefined;

/**
 * The compartments an agent reported. A compartment it left empty (status "": the Go agent's
 * `git`, which the original dashboard computed itself) is not reported at all, so the host keeps
 * what it had. An unknown status is `unknown`; a `checked_at` that is "" or not a time is null.
 */
export function compartmentsOf(sent: Partial<Record<string, WireCompartmentValue>> | null | undefined): Partial<Compartments> | null {
  if (!sent) return null;
  const out: Partial<Compartments> = {};
  for (const name of COMPARTMENT_NAMES) {
    const value = sent[name];
    if (!value || !value.status) continue;
    out[name] = compartmentOf(value);
  }
  return Object.keys(out).length > 0 ? out : null;
}

function compartmentOf(value: NonNullable<WireCompartmentValue>): Compartment {
  const status = (COMPARTMENT_STATUSES as readonly string[]).includes(value.status ?? '') ? (value.status as Compartment['status']) : 'unknown';
  return { status, message: value.message ?? '', checked_at: isoOrNull(value.checked_at ?? '') };
}

/** An RFC 3339 time as our ISO UTC form, or null for "" and anything unreadable. */
export function isoOrNull(value: string): string | null {
  if (value === '') return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}
