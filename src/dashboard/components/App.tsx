// The page: header with the sync status, a banner while the link is down, the hosts panel with
// its actions, then commands, pipelines and the event log. Layout only; data comes from the store.
import { useStore } from '../context.js';
import { plural } from '../format.js';
import { formatWhen } from '../time.js';
import { AddHostForm, OpDialog, PipelineDialog, SelectionBar } from './Actions.js';
import { Commands } from './Commands.js';
import { EventLog } from './EventLog.js';
import { effectiveStatus } from './HostCells.js';
import { HostsTable } from './HostsTable.js';
import { Notices } from './Notices.js';
import { Pipelines } from './Pipelines.js';
import { SyncStatus } from './SyncStatus.js';
import { AccessPanel, accessOpen } from './AccessPanel.js';
import { canOperate, isAdmin, logout, me } from '../session.js';

function UserMenu() {
  const user = me.value;
  if (!user) return null;
  return (
    <div class="user-menu">
      <span>
        {user.name} <span class="muted">({user.role})</span>
      </span>
      {isAdmin.value ? (
        <button type="button" class="button small" onClick={() => (accessOpen.value = true)}>
          Access…
        </button>
      ) : null}
      <button type="button" class="button small" onClick={() => void logout()}>
        Log out
      </button>
    </div>
  );
}

function LinkBanner() {
  const store = useStore();
  const { status, reason } = store.status.value;
  const frozenAt = store.frozenAt.value;
  if (!store.hasState.value || (status !== 'offline' && status !== 'connecting')) return null;
  return (
    <div class="banner tone-bad" role="status">
      <strong>Not connected</strong> ({reason}). Showing the fleet as of version {store.version.value.toLocaleString()}
      {frozenAt !== null ? `, last heard ${formatWhen(new Date(frozenAt).toISOString())}` : ''}; reconnecting…
    </div>
  );
}

function HostsSummary() {
  const store = useStore();
  const hosts = store.hosts.value;
  const now = store.referenceNow.value;
  const counts = { online: 0, stale: 0, offline: 0, unknown: 0 } as Record<string, number>;
  let busy = 0;
  for (const h of hosts) {
    const s = effectiveStatus(h, now);
    counts[s] = (counts[s] ?? 0) + 1;
    if (h.pending_command) busy++;
  }
  return (
    <p class="summary">
      <span class="num">{plural(hosts.length, 'host')}</span>
      {(['online', 'stale', 'offline', 'unknown'] as const).map((s) =>
        counts[s] ? (
          <span key={s} class={`summary-item tone-text-${s}`}>
            <span class="num">{counts[s]}</span> {s}
          </span>
        ) : null,
      )}
      {busy ? (
        <span class="summary-item tone-text-running">
          <span class="num">{busy}</span> busy
        </span>
      ) : null}
    </p>
  );
}

function PanelCount({ n }: { n: number }) {
  return <span class="count num">{n}</span>;
}

export function App({ beaconMs }: { beaconMs: number }) {
  const store = useStore();
  const commands = store.commands.value;
  const pipelines = store.pipelines.value;
  return (
    <>
      <header class="topbar">
        <div class="brand">
          <span class="logo" aria-hidden="true" />
          <h1>NixFleet</h1>
        </div>
        <SyncStatus beaconMs={beaconMs} />
        <UserMenu />
      </header>
      <LinkBanner />
      <main class="layout">
        <Notices />
        <section class="panel panel-hosts" aria-labelledby="hosts-title">
          <div class="panel-head">
            <div class="panel-title">
              <h2 id="hosts-title">Hosts</h2>
              <HostsSummary />
            </div>
            {canOperate.value ? <AddHostForm /> : null}
          </div>
          {canOperate.value ? <SelectionBar /> : null}
          <HostsTable />
        </section>
        <div class="columns">
          <section class="panel panel-commands" aria-labelledby="commands-title">
            <div class="panel-head">
              <h2 id="commands-title">
                Commands <PanelCount n={commands.length} />
              </h2>
            </div>
            <Commands />
          </section>
          <section class="panel panel-pipelines" aria-labelledby="pipelines-title">
            <div class="panel-head">
              <h2 id="pipelines-title">
                Pipelines <PanelCount n={pipelines.length} />
              </h2>
            </div>
            <Pipelines pipelines={pipelines} />
          </section>
        </div>
        <section class="panel panel-events" aria-labelledby="events-title">
          <div class="panel-head">
            <h2 id="events-title">Event log</h2>
          </div>
          <EventLog />
        </section>
      </main>
      <OpDialog />
      <PipelineDialog />
      {isAdmin.value ? <AccessPanel /> : null}
    </>
  );
}
