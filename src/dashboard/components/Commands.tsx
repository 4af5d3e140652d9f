// Commands: the active ones (pending/running, output open and streaming) and the recent finished
// ones (output folded), newest first. One memoized card per command, keyed by id.
import { cancelCommand } from '../actions.js';
import { canOperate } from '../session.js';
import { memo } from '../memo.js';
import { isTerminalCommandStatus } from '../../protocol/constants.js';
import type { Command } from '../../protocol/schema.js';
import { useStore } from '../context.js';
import { between, formatDuration, formatFull, formatWhen } from '../time.js';
import { Badge } from './Badge.js';
import { CommandOutput } from './CommandOutput.js';

function Elapsed({ from }: { from: string | null }) {
  const now = useStore().clock.value;
  const ms = between(from, null, now);
  return <span class="num">{ms === null ? '—' : formatDuration(ms)}</span>;
}

/** What an unfinished command waits for, beyond its status. */
function phaseOf(command: Command): string | null {
  if (command.stop_requested_at !== null) return 'stopping';
  if (command.exit_code !== null) return 'restarting agent';
  if (command.status === 'pending') return command.sent_at === null ? 'queued until its agent connects' : 'sent to the agent';
  return null;
}

function Header({ command, hostname }: { command: Command; hostname: string }) {
  const finished = command.finished_at !== null;
  const phase = finished ? null : phaseOf(command);
  return (
    <div class="command-head">
      <span class="command-title">
        <span class="op">{command.op}</span> <span class="muted">on</span> <span class="command-host">{hostname}</span>
      </span>
      <Badge status={command.status} />
      {phase ? <span class="command-phase muted" data-field="phase">{phase}…</span> : null}
      <span class="command-meta">
        <span class="num" title={formatFull(command.started_at ?? command.created_at)}>
          {formatWhen(command.started_at ?? command.created_at)}
        </span>
        {' · '}
        {finished ? <span class="num">{formatDuration(between(command.started_at ?? command.created_at, command.finished_at, 0) ?? 0)}</span> : <Elapsed from={command.started_at ?? command.created_at} />}
        {' · '}
        <span class="num" title="exit code">
          {command.exit_code === null ? <span class="muted">exit —</span> : `exit ${command.exit_code}`}
        </span>
        {command.pipeline_id ? <span class="muted" title={`pipeline ${command.pipeline_id}`}> · pipeline</span> : null}
      </span>
      {!finished && canOperate.value ? (
        <button
          type="button"
          class="button small danger-outline"
          disabled={command.stop_requested_at !== null}
          title={command.stop_requested_at !== null ? 'the agent was told to stop; waiting for it to confirm' : 'tell the agent to stop this command'}
          onClick={() => confirm(`Stop ${command.op} on ${hostname}?`) && void cancelCommand(command.id, `${command.op} on ${hostname}`)}
        >
          {command.stop_requested_at !== null ? 'Stopping…' : 'Stop'}
        </button>
      ) : null}
    </div>
  );
}

const CommandCard = memo(function CommandCard({ command, hostname }: { command: Command; hostname: string }) {
  const active = !isTerminalCommandStatus(command.status);
  const output = <CommandOutput id={command.id} output={command.output} size={command.output_size} live={active} />;
  if (active) {
    return (
      <li class="command is-active" data-command-id={command.id}>
        <Header command={command} hostname={hostname} />
        {output}
      </li>
    );
  }
  return (
    <li class="command" data-command-id={command.id}>
      <details>
        <summary>
          <Header command={command} hostname={hostname} />
        </summary>
        {output}
      </details>
    </li>
  );
});

export function Commands() {
  const store = useStore();
  const commands = store.commands.value;
  const names = store.hostnames.value;
  const active: Command[] = [];
  const recent: Command[] = [];
  for (let i = commands.length - 1; i >= 0; i--) {
    const c = commands[i]!;
    (isTerminalCommandStatus(c.status) ? recent : active).push(c);
  }
  const card = (c: Command) => <CommandCard key={c.id} command={c} hostname={names.get(c.host_id) ?? c.host_id} />;
  return (
    <>
      <h3 class="subhead">
        Active <span class="count num">{active.length}</span>
      </h3>
      {active.length > 0 ? <ul class="command-list">{active.map(card)}</ul> : <p class="empty">No command is running.</p>}
      <h3 class="subhead">
        Recent <span class="count num">{recent.length}</span>
      </h3>
      {recent.length > 0 ? <ul class="command-list">{recent.map(card)}</ul> : <p class="empty">No finished command yet.</p>}
    </>
  );
}
