// The hosts table: one memoized row per host, keyed by id, re-rendered only when its host object,
// its running command's op/status or its selection changes (entities keep their identity while
// unchanged, see store.ts). Fixed column widths: nothing moves when a heartbeat lands.
import { canOperate } from '../session.js';
import { useVisibleRows } from '../visible-rows.js';
import { memo } from '../memo.js';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import type { Command, Host } from '../../protocol/schema.js';
import { useStore } from '../context.js';
import { shortGeneration } from '../format.js';
import { opDialog, selection, setSelection, toggleHost } from '../ui.js';
import { Badge } from './Badge.js';
import { CompartmentsView, LastSeenCell, MetricsView, StatusCell } from './HostCells.js';

interface RowProps {
  host: Host;
  commandOp: Command['op'] | null;
  /** The command's status, or `queued` for one that waits for the host's agent. */
  commandStatus: Command['status'] | 'queued' | null;
  selected: boolean;
}

const HostRow = memo(function HostRow({ host, commandOp, commandStatus, selected }: RowProps) {
  const command = host.pending_command;
  return (
    <tr data-host-id={host.id} class={selected ? 'is-selected' : undefined}>
      <td class="col-select">
        <input type="checkbox" checked={selected} aria-label={`Select ${host.hostname}`} onChange={() => toggleHost(host.id)} />
      </td>
      <td data-field="hostname" role="rowheader" class="col-host" title={host.id === host.hostname ? host.hostname : `${host.hostname} (id ${host.id})`}>
        {host.hostname}
      </td>
      <td data-field="host_type" class="muted">
        {host.host_type}
      </td>
      <StatusCell status={host.status} lastSeen={host.last_seen} />
      <LastSeenCell lastSeen={host.last_seen} />
      <td data-field="metrics">
        <MetricsView metrics={host.metrics} />
      </td>
      <td data-field="agent_version" class="mono" title={agentTitle(host)}>
        {host.agent_version ?? <span class="muted">—</span>}
      </td>
      <td data-field="generation" class="mono" title={host.generation ?? 'no generation reported'}>
        {host.generation ? shortGeneration(host.generation) : <span class="muted">—</span>}
      </td>
      <td data-field="compartments">
        <CompartmentsView compartments={host.compartments} />
      </td>
      <td data-field="command" title={command ? `command ${command}` : undefined}>
        {command ? (
          <span class="running-command">
            <span class="op">{commandOp ?? command}</span>
            <Badge status={commandStatus ?? 'running'} />
          </span>
        ) : (
          <span class="muted">idle</span>
        )}
      </td>
      <td class="col-actions">
        {canOperate.value ? (
          <button type="button" class="button small" aria-label={`Actions for ${host.hostname}`} onClick={() => (opDialog.value = { hostIds: [host.id] })}>
            Run…
          </button>
        ) : null}
      </td>
    </tr>
  );
});

/** Stands in for rows that are off screen, keeping the scroll height true. */
function Spacer({ height }: { height: number }) {
  return (
    <tr class="spacer-row" aria-hidden="true">
      <td colSpan={11} style={{ height: `${height}px`, padding: 0, border: 0 }} />
    </tr>
  );
}

/** Its own signals only (the host ids change when hosts come and go, not on every update). */
const SelectAll = memo(function SelectAll() {
  const hostnames = useStore().hostnames.value;
  const ids = useMemo(() => [...hostnames.keys()], [hostnames]);
  const ref = useRef<HTMLInputElement>(null);
  const selected = selection.value;
  const count = ids.filter((id) => selected.has(id)).length;
  const all = ids.length > 0 && count === ids.length;
  useEffect(() => {
    if (ref.current) ref.current.indeterminate = count > 0 && !all;
  }, [count, all]);
  return <input ref={ref} type="checkbox" checked={all} disabled={ids.length === 0} aria-label="Select all hosts" onChange={() => setSelection(all ? [] : ids)} />;
});

export function HostsTable() {
  const store = useStore();
  const hosts = store.hosts.value;
  const commands = store.commandsById.value;
  const selected = selection.value;
  const hasState = store.hasState.value;
  // Only the rows on screen are rendered in a large fleet; the rest is a spacer of their height.
  const { ref, range } = useVisibleRows<HTMLTableSectionElement>(hosts.length);
  return (
    <div class="table-scroll" role="region" aria-label="Hosts table" tabIndex={0}>
      <table class="hosts">
        <colgroup>
          <col class="w-select" />
          <col class="w-host" />
          <col class="w-type" />
          <col class="w-status" />
          <col class="w-seen" />
          <col class="w-metrics" />
          <col class="w-agent" />
          <col class="w-gen" />
          <col class="w-checks" />
          <col class="w-command" />
          <col class="w-actions" />
        </colgroup>
        <thead>
          <tr>
            <th scope="col" class="col-select">
              <SelectAll />
            </th>
            <th scope="col" class="col-host">Host</th>
            <th scope="col">Type</th>
            <th scope="col">Status</th>
            <th scope="col">Last seen</th>
            <th scope="col">Metrics</th>
            <th scope="col">Agent</th>
            <th scope="col">
              <abbr title="Generation">Gen.</abbr>
            </th>
            <th scope="col">Checks</th>
            <th scope="col">Command</th>
            <th scope="col" class="col-actions">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody ref={ref}>
          {range.before > 0 ? <Spacer height={range.before} /> : null}
          {hosts.slice(range.start, range.end).map((host) => {
            const command = host.pending_command ? commands.get(host.pending_command) : undefined;
            return <HostRow key={host.id} host={host} commandOp={command?.op ?? null} commandStatus={command ? (command.status === 'pending' && command.sent_at === null ? 'queued' : command.status) : null} selected={selected.has(host.id)} />;
          })}
          {range.after > 0 ? <Spacer height={range.after} /> : null}
          {hosts.length === 0 ? (
            <tr class="empty-row">
              <td colSpan={11}>{hasState ? 'No hosts yet. Add one with the form above.' : 'Waiting for the fleet state…'}</td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </div>
  );
}

/** The agent version with what the agent registered about its system, for the cell's tooltip. */
function agentTitle(host: Host): string {
  const parts = [host.agent_version ? `agent ${host.agent_version}` : 'unknown agent version'];
  if (host.os_version) parts.push(`OS ${host.os_version}`);
  if (host.nixpkgs_version) parts.push(`nixpkgs ${host.nixpkgs_version}`);
  return parts.join(' · ');
}
