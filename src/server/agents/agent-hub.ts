// The agent side of /ws: sessions of agent tokens, one per host. It admits an agent by its
// `register` (the host its token is bound to, and no other), keeps the host's liveness (online
// while the session lives and beats; offline through a versioned change when it closes or falls
// silent), turns heartbeats into host changes (heartbeat-changes.ts), output lines into batched
// `command_progress`, and reports into the command lifecycle. It also carries the operators'
// commands to the agents: it follows committed changes, so a command created on any instance
// reaches the instance holding its host's session.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AgentCloseCode, SWITCH_OPS } from '../../protocol/agent-wire.js';
import type { Change, Command, HostFields } from '../../protocol/schema.js';
import { isHostname, HOSTNAME_RULE } from '../../protocol/names.js';
import type { Principal } from '../auth/roles.js';
import { eventLogged, hostAdded, type ActionContext } from '../fleet-actions.js';
import type { Logger } from '../logger.js';
import type { OutputIntake } from '../output-intake.js';
import { ChangeRejectedError, type StateManager } from '../state-manager.js';
import type { CredentialCheck } from '../transport/sync-hub.js';
import { compartmentsOf, hostTypeOf, metricsOf, nullIfEmpty, parseAgentFrame, type AgentPayload } from './agent-messages.js';
import type { AgentPolicy } from './agent-policy.js';
import type { AgentPresence } from './agent-presence.js';
import { AgentSession } from './agent-session.js';
import { CommandLifecycle } from './command-lifecycle.js';
import { heartbeatFields } from './heartbeat-changes.js';
import { rawToString } from '../transport/raw-data.js';

export interface AgentHubOptions {
  policy: AgentPolicy;
  presence: AgentPresence;
  output: OutputIntake;
  lifecycle: CommandLifecycle;
  actions: ActionContext;
  logger: Logger;
  credentials?: CredentialCheck;
  /** Largest frame an agent may send. */
  maxMessageBytes?: number;
  now?: () => number;
}

/** A batch of output is committed at this size even before `outputFlushMs`. */
const BATCH_BYTES = 64 * 1024;
/** Ops the agent carries out by going away: its return is their success. */
const RESTARTING_OPS: readonly string[] = ['restart', 'reboot'];
/** How often sessions are checked for silence and leases renewed. */
const CHECK_MS = 1_000;
/** A session quiet this long is pinged. */
const QUIET_PING_MS = 10_000;
/** A heartbeat this soon after `register` may predate a resent `status`: it does not end a command. */
const RECONCILE_AFTER_MS = 1_000;

export class AgentHub {
  private readonly wss: WebSocketServer;
  /** The live session of each host held by this instance. */
  private readonly sessions = new Map<string, AgentSession>();
  private readonly all = new Set<AgentSession>();
  private readonly now: () => number;
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | null = null;
  private unsubscribeRevoke: (() => void) | null = null;
  private closing = false;
  readonly stats = { connections: 0, registered: 0, refused: 0, heartbeats: 0, heartbeatChanges: 0, outputLines: 0, duplicateLines: 0, strayLines: 0, invalidFrames: 0 };

  constructor(
    private readonly manager: StateManager,
    private readonly options: AgentHubOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes ?? 256 * 1024, clientTracking: false, perMessageDeflate: false });
  }

  start(): void {
    this.unsubscribe = this.manager.subscribe(({ change }) => this.follow(change));
    this.timers.push(setInterval(() => void this.check(), CHECK_MS).unref());
    this.unsubscribeRevoke = this.options.credentials?.onRevoke(() => this.checkCredentials()) ?? null;
  }

  /** Hosts whose agent session is on this instance. */
  get hostIds(): string[] {
    return [...this.sessions.keys()];
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Resolves when the session of `hostId` has handled every message received so far (tests). */
  async settled(hostId: string): Promise<void> {
    await this.sessions.get(hostId)?.settled();
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, principal: Extract<Principal, { kind: 'token' }>): void {
    if (this.closing || principal.hostId === null) return void socket.destroy();
    const hostId = principal.hostId;
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, principal, hostId));
  }

  /** Closes every agent socket with 1001. The hosts stay as they are: their agents come back to the next process. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.unsubscribe?.();
    this.unsubscribeRevoke?.();
    for (const timer of this.timers) clearInterval(timer);
    await Promise.all([...this.all].map((session) => this.flush(session).catch(() => {})));
    for (const session of this.all) {
      session.clearTimers();
      session.socket.close(AgentCloseCode.GOING_AWAY, 'server shutting down');
    }
    this.wss.close();
  }

  private accept(ws: WebSocket, principal: Extract<Principal, { kind: 'token' }>, hostId: string): void {
    ws.on('error', (error) => this.options.logger.debug('agent socket error', { host: hostId, error: error.message }));
    const session = new AgentSession(ws, principal, hostId, this.now());
    this.all.add(session);
    this.stats.connections++;
    session.later(this.options.policy.registerTimeoutMs, () => {
      if (!session.registered) this.refuse(session, AgentCloseCode.PROTOCOL_ERROR, `no register within ${this.options.policy.registerTimeoutMs} ms`);
    });
    ws.on('message', (data, isBinary) => {
      session.lastHeardAt = this.now();
      if (isBinary) return this.refuse(session, AgentCloseCode.PROTOCOL_ERROR, 'binary frames are not part of the agent protocol');
      const text = rawToString(data);
      session.enqueue(
        () => this.receive(session, text),
        (error) => this.options.logger.error('agent message failed', { host: hostId, error: (error as Error).message }),
      );
    });
    // Any sign of life counts: a frame, a pong, or the agent's own keepalive ping.
    const alive = () => {
      session.lastHeardAt = this.now();
    };
    ws.on('pong', alive);
    ws.on('ping', alive);
    ws.on('close', (code, reason) => {
      session.closed = true;
      session.enqueue(
        () => this.closed(session, code, reason.toString('utf8')),
        (error) => this.options.logger.error('agent close handling failed', { host: hostId, error: (error as Error).message }),
      );
    });
  }

  private async receive(session: AgentSession, text: string): Promise<void> {
    if (session.closed && !session.registered) return;
    const parsed = parseAgentFrame(text);
    if (!parsed.ok) {
      this.stats.invalidFrames++;
      // Unknown types are ignored, as the original does: a newer agent may know more.
      this.options.logger[parsed.unknownType ? 'debug' : 'warn']('agent frame ignored', { host: session.hostId, reason: parsed.reason });
      if (!session.registered && !parsed.unknownType) this.refuse(session, AgentCloseCode.PROTOCOL_ERROR, `first message must be a valid register (${parsed.reason})`);
      return;
    }
    const { message } = parsed;
    if (message.type === 'register') return this.register(session, message.payload);
    if (!session.registered) return this.refuse(session, AgentCloseCode.PROTOCOL_ERROR, `send register first (got ${message.type})`);
    switch (message.type) {
      case 'heartbeat':
        return this.heartbeat(session, message.payload);
      case 'output':
        return this.output(session, message.payload);
      case 'status':
        return this.status(session, message.payload);
      case 'command_complete':
        return this.commandComplete(session, message.payload);
      case 'command_rejected':
        return this.rejected(session, message.payload);
      case 'operation_progress':
      case 'test_progress':
        return this.progress(session);
    }
  }

  // ── register ────────────────────────────────────────────────────────────────────────────────

  private async register(session: AgentSession, payload: AgentPayload<'register'>): Promise<void> {
    const { hostId } = session;
    const host = this.manager.state.hosts.get(hostId);
    if (session.registered) return; // a repeated register on one socket changes nothing
    if (host && host.hostname !== payload.hostname) {
      return this.refuseRegistration(session, payload.hostname, `this token is bound to host '${hostId}' ('${host.hostname}'), not '${payload.hostname.slice(0, 64)}'`);
    }
    if (!host && !isHostname(payload.hostname)) {
      return this.refuseRegistration(session, payload.hostname, `'${payload.hostname.slice(0, 64)}' cannot be a host's name: ${HOSTNAME_RULE}`);
    }
    const now = this.now();
    const fields: HostFields = {
      status: 'online',
      last_seen: new Date(now).toISOString(),
      host_type: hostTypeOf(payload.host_type),
      agent_version: nullIfEmpty(payload.agent_version),
      os_version: nullIfEmpty(payload.os_version),
      nixpkgs_version: nullIfEmpty(payload.nixpkgs_version),
      ...(payload.generation !== '' ? { generation: payload.generation } : {}),
    };
    const changes: Change[] = host
      ? [{ type: 'host_updated', id: hostId, fields }]
      : [hostAdded({ id: hostId, hostname: payload.hostname, host_type: fields.host_type!, status: 'online', last_seen: fields.last_seen!, agent_version: fields.agent_version!, generation: nullIfEmpty(payload.generation), os_version: fields.os_version!, nixpkgs_version: fields.nixpkgs_version!, metrics: null, compartments: {} }, this.options.actions)];
    session.hostname = payload.hostname;
    session.sourceCommit = nullIfEmpty(payload.source_commit);
    session.registeredAt = now;
    session.publish.lastPublishedAt = now;
    if (payload.heartbeat_interval) session.intervalMs = payload.heartbeat_interval * 1000;
    changes.push(this.hostEvent(session, 'info', host ? 'agent connected' : 'agent registered a new host', { agent_version: fields.agent_version ?? null, source_commit: nullIfEmpty(payload.source_commit) }));

    const previous = this.sessions.get(hostId);
    if (previous && previous !== session) {
      previous.replaced = true;
      previous.socket.close(AgentCloseCode.REPLACED, 'replaced by a newer connection of this host');
    }
    this.sessions.set(hostId, session);
    try {
      await this.options.presence.claim(hostId);
      await this.manager.applyAll(changes);
    } catch (error) {
      if (this.sessions.get(hostId) === session) this.sessions.delete(hostId);
      session.hostname = null;
      if (error instanceof ChangeRejectedError && error.code !== 'closed') return this.refuseRegistration(session, payload.hostname, error.message);
      // The store is down or closing: the agent retries, as after any server trouble.
      this.refuse(session, 1011, 'server could not register the host; retry');
      throw error;
    }
    this.stats.registered++;
    let command = this.options.lifecycle.unfinishedOf(hostId);
    // A fresh register is what a switch that reported success (or a restart, a reboot) waits
    // for: the agent is back. Its heartbeats need not be awaited.
    if (command && (command.exit_code !== null || (RESTARTING_OPS.includes(command.op) && command.sent_at !== null))) {
      await this.cameBack(session, command);
      command = this.options.lifecycle.unfinishedOf(hostId);
    }
    // A command waiting for this agent (queued while the host was offline) is not the agent's to
    // report on: it is sent now, after `registered`.
    const waiting = command && command.status === 'pending' && command.sent_at === null ? command : null;
    session.reconcileCommandId = waiting ? null : (command?.id ?? null);
    const reported = waiting ? null : command;
    session.send('registered', { host_id: hostId, command: reported?.op ?? null, command_id: reported?.id ?? null, output_seq: reported?.output_seq ?? 0 });
    if (waiting) await this.dispatch(session, waiting);
  }

  private async refuseRegistration(session: AgentSession, claimed: string, reason: string): Promise<void> {
    this.stats.refused++;
    this.options.logger.warn('agent registration refused', { host: session.hostId, token: session.principal.name, claimed: claimed.slice(0, 64), reason });
    this.refuse(session, AgentCloseCode.WRONG_HOST, reason);
    const event = eventLogged(
      { level: 'warning', category: 'agent', message: `agent registration refused: ${reason}`, actor: `token:${session.principal.name}`.slice(0, 200), host_id: this.manager.state.hosts.has(session.hostId) ? session.hostId : null, action: 'register', details: { token_id: session.principal.tokenId, claimed_hostname: claimed.slice(0, 253) } },
      this.options.actions,
    );
    await this.manager.apply(event).catch((error) => this.options.logger.warn('could not log a refused registration', { error: (error as Error).message }));
  }

  private refuse(session: AgentSession, code: number, reason: string): void {
    // A close reason is at most 123 bytes.
    if (!session.closed) session.socket.close(code, Buffer.from(reason).subarray(0, 123).toString('utf8').replace(/\uFFFD$/, ''));
  }

  // ── heartbeat ───────────────────────────────────────────────────────────────────────────────

  private async heartbeat(session: AgentSession, payload: AgentPayload<'heartbeat'>): Promise<void> {
    this.stats.heartbeats++;
    const host = this.manager.state.hosts.get(session.hostId);
    if (!host) return;
    await this.reconcile(session, payload.pending_command ?? null, payload.command_pid ?? null);
    const fields = heartbeatFields(
      host,
      { generation: nullIfEmpty(payload.generation), nixpkgs_version: nullIfEmpty(payload.nixpkgs_version), metrics: metricsOf(payload.metrics), compartments: compartmentsOf(payload.update_status) },
      session.publish,
      this.now(),
      this.options.policy,
    );
    // A host marked offline while its agent still beats (a sweep that raced a slow link) is back.
    const publish: HostFields | null = host.status === 'online' ? fields : { ...(fields ?? { last_seen: new Date(this.now()).toISOString() }), status: 'online' };
    if (!publish) return;
    this.stats.heartbeatChanges++;
    await this.manager.apply({ type: 'host_updated', id: session.hostId, fields: publish });
  }

  /**
   * What the agent says it runs (`pending_command`, `command_pid`) against the host's command:
   * it started it (pending → running, with its pid); it runs nothing after a reconnect (the
   * result was lost, or a switch/restart it reported came back); it runs something the server
   * no longer waits for (stopped by a timeout: told to stop again).
   */
  private async reconcile(session: AgentSession, runs: string | null, pid: number | null): Promise<void> {
    const lifecycle = this.options.lifecycle;
    const command = lifecycle.unfinishedOf(session.hostId);
    if (runs !== null) {
      // It names the op it runs: ours, started (or a leftover the server no longer waits for).
      if (command && (runs === command.op || runs === '')) await lifecycle.started(command, pid, { actor: session.actor, message: `${command.op} started` });
      else if (pid !== null && !session.stopsSent.has(pid)) {
        session.stopsSent.add(pid);
        this.options.logger.info('agent runs an op the server does not wait for; telling it to stop', { host: session.hostId, op: runs, pid });
        session.send('command', { command: 'stop' });
      }
      return;
    }
    if (!command || command.id !== session.reconcileCommandId) return;
    if (this.now() - session.registeredAt < RECONCILE_AFTER_MS) return;
    session.reconcileCommandId = null;
    const note = { actor: session.actor };
    if (command.exit_code !== null || RESTARTING_OPS.includes(command.op)) return this.cameBack(session, command);
    if (command.stop_requested_at !== null) return lifecycle.finished(command, 'cancelled', null, { ...note, message: `${command.op} stopped: the agent runs nothing after reconnecting` });
    const message =
      command.status === 'pending'
        ? `${command.op} was not delivered: the agent reconnected without starting it; run it again (a command is sent at most once)`
        : `${command.op} ended with no result: the agent runs nothing after reconnecting (it restarted, or its report was lost)`;
    return lifecycle.finished(command, 'error', null, { ...note, message });
  }

  /** A switch, restart or reboot whose agent registered again has succeeded. */
  private cameBack(session: AgentSession, command: Command): Promise<void> {
    const host = this.manager.state.hosts.get(session.hostId);
    // The event names the build the agent came back as, so a stale binary shows.
    const build = { agent_version: host?.agent_version ?? null, generation: host?.generation ?? null, source_commit: session.sourceCommit };
    const message = `${command.op} succeeded: the agent came back (agent ${build.agent_version ?? 'unknown'}, generation ${build.generation ?? 'unknown'})`;
    return this.options.lifecycle.finished(command, 'success', command.exit_code ?? 0, { actor: session.actor, message, details: build });
  }

  // ── output ──────────────────────────────────────────────────────────────────────────────────

  private async output(session: AgentSession, payload: AgentPayload<'output'>): Promise<void> {
    const command = this.options.lifecycle.unfinishedOf(session.hostId);
    if (!command) {
      this.stats.strayLines++;
      return;
    }
    const seq = payload.seq;
    if (seq !== undefined) {
      const taken = Math.max(command.output_seq, session.seqTaken.get(command.id) ?? 0);
      if (seq <= taken) {
        this.stats.duplicateLines++;
        return;
      }
      session.seqTaken.set(command.id, seq);
    }
    this.stats.outputLines++;
    if (session.batch && session.batch.commandId !== command.id) await this.flush(session);
    const batch = (session.batch ??= { commandId: command.id, lines: [], bytes: 0, lastSeq: undefined });
    batch.lines.push(payload.line);
    batch.bytes += payload.line.length + 1;
    if (seq !== undefined) batch.lastSeq = seq;
    if (batch.bytes >= BATCH_BYTES) return this.flush(session);
    session.flushTimer ??= setTimeout(() => {
      session.flushTimer = null;
      session.enqueue(
        () => this.flush(session),
        (error) => this.options.logger.error('agent output flush failed', { host: session.hostId, error: (error as Error).message }),
      );
    }, this.options.policy.outputFlushMs);
  }

  /** Commits the gathered lines as one `command_progress` (through the output cap). */
  private async flush(session: AgentSession): Promise<void> {
    const batch = session.batch;
    session.batch = null;
    if (session.flushTimer) clearTimeout(session.flushTimer);
    session.flushTimer = null;
    if (!batch || batch.lines.length === 0) return;
    try {
      await this.options.output.append(null, batch.commandId, `${batch.lines.join('\n')}\n`, batch.lastSeq);
    } catch (error) {
      // The command ended meanwhile (a stop, a timeout): its late lines have nowhere to go.
      if (error instanceof ChangeRejectedError) return this.options.logger.debug('late output dropped', { host: session.hostId, command: batch.commandId });
      throw error;
    }
  }

  // ── the end of a command ────────────────────────────────────────────────────────────────────

  private async status(session: AgentSession, payload: AgentPayload<'status'>): Promise<void> {
    await this.flush(session);
    const lifecycle = this.options.lifecycle;
    const command = lifecycle.unfinishedOf(session.hostId);
    if (!command || command.exit_code !== null) return;
    // An op that ends before any sign of its start (no output, no heartbeat in between) ran.
    if (command.status === 'pending' && payload.command !== 'stop') await lifecycle.started(command, null, { actor: session.actor, message: `${command.op} started` });
    const exitCode = payload.exit_code ?? null;
    const note = { actor: session.actor, details: { agent_status: payload.status, agent_message: payload.message || null, generation: payload.generation || null } };
    // The Go agent answers a stop with nothing running by a `status` for the op "stop".
    if (payload.command === 'stop' && command.op !== 'stop') {
      if (command.stop_requested_at !== null) await lifecycle.finished(command, 'cancelled', null, { ...note, message: `${command.op} stopped: the agent runs nothing` });
      return;
    }
    if (payload.status === 'stopped' || command.stop_requested_at !== null) {
      return lifecycle.finished(command, 'cancelled', exitCode, { ...note, message: `${command.op} stopped${exitCode !== null ? ` (exit ${exitCode})` : ''}` });
    }
    const ok = payload.status === 'ok' || payload.status === 'warning';
    if (ok && SWITCH_OPS.includes(command.op)) {
      // The agent now restarts on its new build; the switch has succeeded when it is back, or
      // when it stays (an agent configured not to restart).
      await lifecycle.reportedBeforeRestart(command, exitCode ?? 0, { ...note, message: `${command.op} done; waiting for the agent to restart` });
      session.later(this.options.policy.restartGraceMs, () => {
        if (session.closed) return;
        session.enqueue(async () => {
          const still = lifecycle.unfinishedOf(session.hostId);
          if (still?.id === command.id && !session.closed) await lifecycle.finished(still, 'success', still.exit_code, { actor: session.actor, message: `${command.op} succeeded (the agent stayed)` });
        }, (error) => this.options.logger.error('switch grace failed', { error: (error as Error).message }));
      });
      return;
    }
    const level = payload.status === 'warning' ? 'warning' : undefined;
    const outcome = ok ? 'succeeded' : 'failed';
    await lifecycle.finished(command, ok ? 'success' : 'error', exitCode, { ...note, ...(level ? { level } : {}), message: `${command.op} ${outcome}${exitCode !== null ? ` (exit ${exitCode})` : ''}${payload.message ? `: ${payload.message}` : ''}` });
  }

  /** A newer agent's summary after `status`; it ends the command only if no status did. */
  private async commandComplete(session: AgentSession, payload: AgentPayload<'command_complete'>): Promise<void> {
    const command = this.options.lifecycle.unfinishedOf(session.hostId);
    if (!command || command.exit_code !== null || payload.exit_code === undefined) return;
    await this.status(session, { status: payload.exit_code === 0 ? 'ok' : 'error', command: payload.command, exit_code: payload.exit_code, message: '', generation: '' });
  }

  private async rejected(session: AgentSession, payload: AgentPayload<'command_rejected'>): Promise<void> {
    const command = this.options.lifecycle.unfinishedOf(session.hostId);
    if (!command || command.status !== 'pending') return;
    const busy = payload.current_command ? ` (it runs ${payload.current_command}${payload.current_pid ? `, pid ${payload.current_pid}` : ''})` : '';
    await this.options.lifecycle.finished(command, 'error', null, { actor: session.actor, message: `${command.op} rejected by the agent: ${payload.reason || 'no reason given'}${busy}`, details: { reason: payload.reason || null } });
  }

  /** Progress is a sign the agent started the op. */
  private async progress(session: AgentSession): Promise<void> {
    const command = this.options.lifecycle.unfinishedOf(session.hostId);
    if (command?.status === 'pending') await this.options.lifecycle.started(command, null, { actor: session.actor, message: `${command.op} started` });
  }

  // ── liveness ────────────────────────────────────────────────────────────────────────────────

  private async closed(session: AgentSession, code: number, reason: string): Promise<void> {
    session.clearTimers();
    await this.flush(session).catch(() => {});
    this.all.delete(session);
    const hostId = session.hostId;
    if (this.sessions.get(hostId) !== session) return;
    this.sessions.delete(hostId);
    if (this.closing) return;
    await this.options.presence.release(hostId);
    if (!session.registered || session.replaced) return;
    const host = this.manager.state.hosts.get(hostId);
    if (!host || host.status === 'offline') return;
    // A clean close (the agent stopping or restarting itself) is news, not trouble.
    const clean = code === 1000 || code === 1001;
    await this.manager.applyAll([
      { type: 'host_updated', id: hostId, fields: { status: 'offline' } },
      this.hostEvent(session, clean ? 'info' : 'warning', `agent disconnected (${code}${reason ? ` ${reason}` : ''})`, { close_code: code }),
    ]);
  }

  private async check(): Promise<void> {
    const now = this.now();
    for (const session of this.sessions.values()) {
      // A session paused for backpressure is busy with the agent's backlog, not silent.
      if (session.paused) session.lastHeardAt = now;
      const silentFor = now - session.lastHeardAt;
      const allowed = this.options.policy.missedHeartbeats * session.intervalMs;
      if (silentFor > allowed) {
        this.options.logger.warn('agent fell silent; closing its session', { host: session.hostId, silent_ms: silentFor });
        this.refuse(session, AgentCloseCode.SILENT, `no heartbeat for ${Math.round(silentFor / 1000)} s`);
        // A dead link may never finish the close handshake.
        session.later(1_000, () => session.socket.terminate());
      } else if (silentFor >= QUIET_PING_MS && session.socket.readyState === session.socket.OPEN) {
        // Heartbeats keep a healthy link busy; a quiet one is probed so a dead peer shows.
        session.socket.ping();
      }
    }
    try {
      for (const lost of await this.options.presence.renew([...this.sessions.keys()])) {
        const session = this.sessions.get(lost);
        if (!session) continue;
        session.replaced = true;
        this.refuse(session, AgentCloseCode.REPLACED, 'replaced by a newer connection of this host');
      }
    } catch (error) {
      this.options.logger.warn('renewing agent leases failed', { error: (error as Error).message });
    }
  }

  private checkCredentials(): void {
    const credentials = this.options.credentials;
    if (!credentials) return;
    for (const session of this.all) {
      if (!credentials.stillValid(session.principal)) this.refuse(session, AgentCloseCode.UNAUTHORIZED, 'token revoked');
    }
  }

  // ── commands to agents ──────────────────────────────────────────────────────────────────────

  /** Carries committed command changes to the agent of their host, if it is here. */
  private follow(change: Change): void {
    if (change.type === 'command_started') {
      const session = this.sessions.get(change.command.host_id);
      const command = change.command;
      if (session?.registered && command.status === 'pending' && command.sent_at === null) {
        session.enqueue(
          () => this.dispatch(session, command),
          (error) => this.options.logger.error('sending a command to its agent failed', { host: session.hostId, command: command.id, error: (error as Error).message }),
        );
      }
      return;
    }
    const stopping = (change.type === 'command_updated' && change.fields.stop_requested_at) || (change.type === 'command_finished' && change.status === 'timeout');
    if (!stopping) return;
    const command: Command | undefined = this.manager.state.commands.get(change.id);
    const session = command && this.sessions.get(command.host_id);
    if (session?.registered) session.send('command', { command: 'stop', command_id: change.id });
  }

  /** Sends a command to its host's agent, at most once (marked `sent_at` first). */
  private async dispatch(session: AgentSession, command: Command): Promise<void> {
    if (session.closed || this.sessions.get(session.hostId) !== session) return;
    const marked = await this.options.lifecycle.sent(command, { actor: session.actor, message: `${command.op} sent to the agent` });
    if (marked) session.send('command', { command: command.op, command_id: command.id });
  }

  private hostEvent(session: AgentSession, level: 'info' | 'warning', message: string, details: Record<string, string | number | null>): Change {
    return eventLogged({ level, category: 'agent', message, actor: session.actor.slice(0, 200), host_id: session.hostId, action: null, details }, this.options.actions);
  }
}

