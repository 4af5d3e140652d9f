// Go agents (go-agent.ts) that carry out the commands they receive as a test scripts them, for
// tests about what starts commands (pipelines) rather than about the agent protocol: each op
// prints a line, runs `runMs` and ends with the exit code the script gives (0 unless told), or
// runs until stopped; a stop is answered as the Go agent does (`status stopped 130`). Heartbeats
// name the op running, as the Go agent's do. A report due while the link is down is sent once the
// agent is back (as our agent's resend does), so a server restart does not lose it.
import { connectGoAgent, GoAgent, goAgentVia } from './go-agent.js';

export interface AgentScript {
  /** How long each op runs before the agent reports. Default 30 ms. */
  runMs?: number | ((hostId: string, op: string) => number);
  /** Exit code of `op` on `hostId`: 0 succeeds, anything else fails; null runs until stopped. */
  exitCode?: (hostId: string, op: string) => number | null;
  /** Heartbeat interval. Default 1 s. */
  beatMs?: number;
}

export class ScriptedAgent {
  /** Every op received, in order (stops not included). */
  readonly ran: string[] = [];
  private running: { op: string; timer: NodeJS.Timeout | null } | null = null;
  private readonly pending: Array<() => void> = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private stopListening: () => void;

  constructor(
    readonly agent: GoAgent,
    readonly hostId: string,
    private readonly script: AgentScript = {},
  ) {
    this.stopListening = agent.onMessage((message) => {
      if (message.type === 'command') this.command(String(message.payload.command));
    });
    this.timers.push(setInterval(() => this.tick(), 20).unref());
    this.timers.push(
      setInterval(() => {
        if (agent.open) agent.heartbeat(this.running?.op ?? null, this.running ? 4242 : null, { metrics: null, update_status: null });
      }, script.beatMs ?? 1000).unref(),
    );
  }

  /** The op it runs now, or null. */
  get busyWith(): string | null {
    return this.running?.op ?? null;
  }

  close(): void {
    this.stopListening();
    for (const timer of this.timers) clearInterval(timer);
    if (this.running?.timer) clearTimeout(this.running.timer);
    this.agent.close();
  }

  private command(op: string): void {
    if (op === 'stop') {
      const stopped = this.running;
      if (!stopped) return this.report(() => this.agent.status('ok', 'stop', 0, 'no command running'));
      if (stopped.timer) clearTimeout(stopped.timer);
      this.running = null;
      return this.report(() => this.agent.status('stopped', stopped.op, 130));
    }
    this.ran.push(op);
    const code = this.script.exitCode ? this.script.exitCode(this.hostId, op) : 0;
    this.report(() => this.agent.output(`${op} on ${this.hostId}`));
    const running: { op: string; timer: NodeJS.Timeout | null } = { op, timer: null };
    if (code !== null) {
      running.timer = setTimeout(() => {
        if (this.running === running) this.running = null;
        this.report(() => this.agent.status(code === 0 ? 'ok' : 'error', op, code, code === 0 ? '' : `${op} failed`));
      }, typeof this.script.runMs === 'function' ? this.script.runMs(this.hostId, op) : (this.script.runMs ?? 30));
    }
    this.running = running;
  }

  /** Sends now if the link is up, else as soon as it is. */
  private report(send: () => void): void {
    this.pending.push(send);
    this.tick();
  }

  private tick(): void {
    while (this.pending.length > 0 && this.agent.open) this.pending.shift()!();
  }
}

/** A scripted agent for each host (created by its first register), on an in-process server. */
export async function scriptedAgents(
  server: Parameters<typeof connectGoAgent>[0],
  hostIds: readonly string[],
  script: AgentScript,
  defer: (cleanup: () => unknown) => void,
): Promise<ScriptedAgent[]> {
  return Promise.all(
    hostIds.map(async (id) => {
      const scripted = new ScriptedAgent(await connectGoAgent(server, id), id, script);
      defer(() => scripted.close());
      return scripted;
    }),
  );
}

/** The same on a server reached over HTTP only (a server process). */
export async function scriptedAgentsVia(server: Parameters<typeof goAgentVia>[0], hostIds: readonly string[], script: AgentScript, defer: (cleanup: () => unknown) => void): Promise<ScriptedAgent[]> {
  return Promise.all(
    hostIds.map(async (id) => {
      const agent = await goAgentVia(server, id);
      agent.stopBeating();
      const scripted = new ScriptedAgent(agent, id, script);
      defer(() => scripted.close());
      return scripted;
    }),
  );
}
