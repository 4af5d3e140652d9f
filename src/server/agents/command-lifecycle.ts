// The steps of a command's life after `POST /api/commands` created it `pending`, each one a
// versioned change with its event (who did it, what happened): the agent started it, asked to
// stop, reported an exit code before restarting itself, ended it. Every step checks the command
// is still the one it means (unfinished), so a late or repeated report is a no-op, not an error.
import type { Change, Command, CommandFields, EventLogEntry } from '../../protocol/schema.js';
import { isTerminalCommandStatus } from '../../protocol/constants.js';
import { eventLogged, iso, type ActionContext } from '../fleet-actions.js';
import type { Logger } from '../logger.js';
import { ChangeRejectedError, type StateManager } from '../state-manager.js';

export type TerminalStatus = 'success' | 'error' | 'timeout' | 'cancelled';

export interface LifecycleNote {
  /** Who: `agent:<hostname>`, `server`, or the operator's name. */
  actor: string;
  message: string;
  level?: EventLogEntry['level'];
  details?: Record<string, string | number | boolean | null>;
}

export class CommandLifecycle {
  constructor(
    private readonly manager: StateManager,
    private readonly ctx: ActionContext,
    private readonly logger: Logger,
  ) {}

  /** The host's unfinished command, or null. */
  unfinishedOf(hostId: string): Command | null {
    const id = this.manager.state.hosts.get(hostId)?.pending_command;
    const command = id ? this.manager.state.commands.get(id) : undefined;
    return command && !isTerminalCommandStatus(command.status) ? command : null;
  }

  /** pending → running (the agent said it runs it), or a running command's pid learnt. */
  async started(command: Command, pid: number | null, note: LifecycleNote): Promise<void> {
    if (command.status === 'pending') {
      const fields: CommandFields = { status: 'running', started_at: iso(this.ctx), ...(pid !== null ? { pid } : {}) };
      await this.step(command, [{ type: 'command_updated', id: command.id, fields }], { ...note, details: { ...note.details, command_id: command.id, op: command.op, pid } });
    } else if (pid !== null && command.pid !== pid) {
      await this.step(command, [{ type: 'command_updated', id: command.id, fields: { pid } }], null);
    }
  }

  /**
   * Marks the command sent, before it is sent: a crash in between leaves a command marked sent
   * that never left (it ends "not delivered" when its agent reports), never one sent twice.
   * Answers whether this call marked it (false: it was sent already, or has ended).
   */
  async sent(command: Command, note: LifecycleNote): Promise<boolean> {
    const current = this.manager.state.commands.get(command.id);
    if (!current || current.sent_at !== null || current.status !== 'pending') return false;
    await this.step(current, [{ type: 'command_updated', id: command.id, fields: { sent_at: iso(this.ctx) } }], note);
    const after = this.manager.state.commands.get(command.id);
    return after?.status === 'pending' && after.sent_at !== null;
  }

  /** An operator (or the server, at a timeout) asks the agent to stop it. */
  async stopRequested(command: Command, note: LifecycleNote): Promise<void> {
    if ((this.manager.state.commands.get(command.id) ?? command).stop_requested_at !== null) return;
    await this.step(command, [{ type: 'command_updated', id: command.id, fields: { stop_requested_at: iso(this.ctx) } }], note);
  }

  /**
   * Cancels a command: its agent is asked to stop it (it ends when the agent confirms, or after
   * the stop grace); a command whose host has no live agent ends `cancelled` at once, since there
   * is nothing to stop. `because` completes the event's message.
   */
  async cancel(command: Command, actor: string, because?: string): Promise<'stopping' | 'cancelled'> {
    if (this.manager.state.hosts.get(command.host_id)?.status !== 'online') {
      await this.finished(command, 'cancelled', null, { actor, message: `${command.op} cancelled (no agent to stop it${because ? `; ${because}` : ''})` });
      return 'cancelled';
    }
    await this.stopRequested(command, { actor, message: `${command.op}: stop requested${because ? ` (${because})` : ''}` });
    return 'stopping';
  }

  /** A switch reported success; it ends when the restarted agent is back (or stays). */
  async reportedBeforeRestart(command: Command, exitCode: number, note: LifecycleNote): Promise<void> {
    if (command.exit_code !== null) return;
    await this.step(command, [{ type: 'command_updated', id: command.id, fields: { exit_code: exitCode } }], note);
  }

  async finished(command: Command, status: TerminalStatus, exitCode: number | null, note: LifecycleNote): Promise<void> {
    const level = note.level ?? (status === 'success' ? 'success' : status === 'cancelled' ? 'warning' : 'error');
    await this.step(
      command,
      [{ type: 'command_finished', id: command.id, status, exit_code: exitCode, finished_at: iso(this.ctx) }],
      { ...note, level, details: { command_id: command.id, op: command.op, status, exit_code: exitCode, ...note.details } },
    );
  }

  /** Applies `changes` with the step's event, unless the command has ended meanwhile. */
  private async step(command: Command, changes: Change[], note: LifecycleNote | null): Promise<void> {
    const current = this.manager.state.commands.get(command.id);
    if (!current || isTerminalCommandStatus(current.status)) return;
    const all = note ? [...changes, this.event(command, note)] : changes;
    try {
      await this.manager.applyAll(all);
    } catch (error) {
      // Another report ended it between our check and the commit: the first one wins.
      if (error instanceof ChangeRejectedError && error.code === 'conflict') return this.logger.debug('command step came too late', { command: command.id, error: error.message });
      throw error;
    }
  }

  private event(command: Command, note: LifecycleNote): Change {
    return eventLogged(
      {
        level: note.level ?? 'info',
        category: 'command',
        message: note.message,
        actor: note.actor.slice(0, 200),
        host_id: command.host_id,
        action: command.op,
        details: { command_id: command.id, ...note.details },
      },
      this.ctx,
    );
  }
}
