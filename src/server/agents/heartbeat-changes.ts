// Which heartbeats become versioned changes. An agent beats every 5 s; 1,000 hosts would write
// 200 changes a second to the log and to every browser if each beat were published. So a beat
// is published only when something a person sees changed:
// - at once when the generation, nixpkgs version or a compartment's status or message changed;
// - metrics when their shown values (whole percent, load to 0.1) changed, at most once per
//   `metricsPublishMs` per host;
// - otherwise `last_seen` alone, once per `lastSeenPublishMs`.
// Whatever is published carries the newest `last_seen` and compartment check times.
import type { Compartments, Host, HostFields, Metrics } from '../../protocol/schema.js';
import type { AgentPolicy } from './agent-policy.js';

/** What one heartbeat says, in our fields (agent-messages.ts maps the wire values). */
export interface HeartbeatFacts {
  generation: string | null;
  nixpkgs_version: string | null;
  metrics: Metrics | null;
  compartments: Partial<Compartments> | null;
}

/** When this host's fields were last published, kept by its agent session. */
export interface PublishMemory {
  lastPublishedAt: number;
  metricsPublishedAt: number;
}

export function heartbeatFields(host: Host, facts: HeartbeatFacts, memory: PublishMemory, now: number, policy: AgentPolicy): HostFields | null {
  const fields: HostFields = {};
  let urgent = false;
  if (facts.generation !== null && facts.generation !== host.generation) {
    fields.generation = facts.generation;
    urgent = true;
  }
  if (facts.nixpkgs_version !== null && facts.nixpkgs_version !== host.nixpkgs_version) {
    fields.nixpkgs_version = facts.nixpkgs_version;
    urgent = true;
  }
  const compartments = changedCompartments(host.compartments, facts.compartments);
  if (compartments.shown) urgent = true;
  const metricsDue = now - memory.metricsPublishedAt >= policy.metricsPublishMs;
  // null: the agent cannot measure (the Go agent without StaSysMo); the host keeps what it had.
  const metricsShownChanged = facts.metrics !== null && !sameShownMetrics(host.metrics, facts.metrics);
  const lastSeenDue = now - memory.lastPublishedAt >= policy.lastSeenPublishMs;
  if (!urgent && !(metricsShownChanged && metricsDue) && !lastSeenDue) return null;

  if (compartments.changed) fields.compartments = compartments.changed;
  if (metricsShownChanged && (metricsDue || urgent)) {
    fields.metrics = facts.metrics;
    memory.metricsPublishedAt = now;
  }
  fields.last_seen = new Date(now).toISOString();
  memory.lastPublishedAt = now;
  return fields;
}

/** Compartments whose status, message or check time differ; `shown` when status or message do. */
function changedCompartments(current: Compartments, sent: Partial<Compartments> | null): { changed: Partial<Compartments> | null; shown: boolean } {
  if (!sent) return { changed: null, shown: false };
  const changed: Partial<Compartments> = {};
  let shown = false;
  let any = false;
  for (const [name, value] of Object.entries(sent) as [keyof Compartments, Compartments[keyof Compartments]][]) {
    const now = current[name];
    if (now.status === value.status && now.message === value.message && now.checked_at === value.checked_at) continue;
    if (now.status !== value.status || now.message !== value.message) shown = true;
    changed[name] = value;
    any = true;
  }
  return { changed: any ? changed : null, shown };
}

/** Metrics as the dashboard shows them: whole percent, load to one decimal. */
export function sameShownMetrics(a: Metrics | null, b: Metrics | null): boolean {
  if (a === null || b === null) return a === b;
  return Math.round(a.cpu) === Math.round(b.cpu) && Math.round(a.ram) === Math.round(b.ram) && Math.round(a.swap) === Math.round(b.swap) && Math.round(a.load * 10) === Math.round(b.load * 10);
}
