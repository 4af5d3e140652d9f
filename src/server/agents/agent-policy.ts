// How the server judges its agents: when a silent agent counts as gone, how long a switch may
// take to come back, how long a stop may take, when an op has run too long, and how often a
// heartbeat may become a versioned change. One object, read from NIXFLEET_* by config.ts.

export interface OpTimeout {
  /** Past this the event log gets a warning; the op goes on. */
  warnMs: number;
  /** Past this the agent is told to stop and the command ends `timeout`. */
  hardMs: number;
}

export interface AgentPolicy {
  /** Heartbeats an agent may miss (of the interval it registered with) before its session is closed. */
  missedHeartbeats: number;
  /** Time an agent has after the upgrade to send `register`. */
  registerTimeoutMs: number;
  /**
   * How long the server waits for an agent to come back: after a switch (the agent restarts
   * itself), after a server restart, after a lost link in the middle of a command.
   */
  reconnectWindowMs: number;
  /** A `status ok` for a switch with no disconnect this long after it: the agent stays, the switch succeeded. */
  restartGraceMs: number;
  /** Time an agent has to confirm a stop (its `status`) before the command ends `cancelled` anyway. */
  stopGraceMs: number;
  /** Shortest time between two published changes of one host's metrics. */
  metricsPublishMs: number;
  /** Longest time a live host's `last_seen` goes unpublished. */
  lastSeenPublishMs: number;
  /** Output lines are gathered this long into one `command_progress`. */
  outputFlushMs: number;
  /** Warning and hard limits per op; ops not named use `default`. */
  opTimeouts: Record<string, OpTimeout>;
  /** How often the supervisor checks timeouts, stop grace and vanished agents. */
  superviseIntervalMs: number;
  /** A command queued for an offline host that still waits after this long ends `cancelled`. */
  queueMaxAgeMs: number;
  /** Several instances: a session's lease lasts this long unless its instance renews it (every second). */
  leaseTtlMs: number;
}

const MINUTE = 60_000;

/** Defaults from the original NixFleet dashboard (pull 2/5 min, switch 10/30, pull-switch 12/35, test 5/10). */
export const DEFAULT_OP_TIMEOUTS: Readonly<Record<string, OpTimeout>> = Object.freeze({
  pull: { warnMs: 2 * MINUTE, hardMs: 5 * MINUTE },
  switch: { warnMs: 10 * MINUTE, hardMs: 30 * MINUTE },
  'pull-switch': { warnMs: 12 * MINUTE, hardMs: 35 * MINUTE },
  test: { warnMs: 5 * MINUTE, hardMs: 10 * MINUTE },
  default: { warnMs: 10 * MINUTE, hardMs: 30 * MINUTE },
});

export const DEFAULT_AGENT_POLICY: Readonly<AgentPolicy> = Object.freeze({
  missedHeartbeats: 3,
  registerTimeoutMs: 10_000,
  reconnectWindowMs: 90_000,
  restartGraceMs: 5_000,
  stopGraceMs: 10_000,
  metricsPublishMs: 10_000,
  lastSeenPublishMs: 60_000,
  outputFlushMs: 100,
  opTimeouts: DEFAULT_OP_TIMEOUTS,
  superviseIntervalMs: 1_000,
  leaseTtlMs: 10_000,
  queueMaxAgeMs: 24 * 3_600_000,
});

export function opTimeout(policy: AgentPolicy, op: string): OpTimeout {
  return policy.opTimeouts[op] ?? policy.opTimeouts.default ?? DEFAULT_OP_TIMEOUTS.default!;
}

/**
 * Parses `switch=10m/30m,pull=2m/5m` (warning/hard per op) over the defaults. `parseDuration`
 * is the config's own, passed in to keep one duration syntax.
 */
export function parseOpTimeouts(raw: string, parseDuration: (raw: string, maxMs?: number) => number): Record<string, OpTimeout> {
  const out: Record<string, OpTimeout> = { ...DEFAULT_OP_TIMEOUTS };
  for (const part of raw.split(',')) {
    const match = /^\s*([a-z][a-z-]*)\s*=\s*([^/]+)\/(.+)$/.exec(part);
    if (!match) throw new Error(`${JSON.stringify(part.trim())}: expected op=warning/hard, e.g. switch=10m/30m`);
    const [, op, warn, hard] = match as unknown as [string, string, string, string];
    const timeout = { warnMs: parseDuration(warn.trim(), 7 * 86_400_000), hardMs: parseDuration(hard.trim(), 7 * 86_400_000) };
    if (timeout.warnMs > timeout.hardMs) throw new Error(`${op}: the warning (${warn.trim()}) must not come after the hard limit (${hard.trim()})`);
    out[op] = timeout;
  }
  return out;
}
