// The sync status indicator in the header: link status (colour + word, reason in the title),
// version, short epoch and the age of the last server message, ticking once a second.
import { useStore } from '../context.js';
import { short } from '../format.js';
import { formatAge } from '../time.js';
import { toneOf } from './Badge.js';

const LABELS: Record<string, string> = { live: 'Live', resyncing: 'Resyncing', offline: 'Offline', connecting: 'Connecting' };
const HELP: Record<string, string> = {
  live: 'receiving every change as it happens',
  resyncing: 'asked the server for the full state',
  offline: 'not connected; reconnecting with backoff',
  connecting: 'opening the connection',
};

export function SyncStatus({ beaconMs }: { beaconMs: number }) {
  const store = useStore();
  const { status, reason } = store.status.value;
  const version = store.version.value;
  const epoch = store.epoch.value;
  store.clock.value; // re-render on every tick
  const frozenAt = store.frozenAt.value;
  // While the link is down, silenceMs counts from the last reconnect attempt, not from the last
  // message; the store noted when the last message came before the link dropped.
  const silence = !store.hasState.value ? Infinity : frozenAt !== null ? Date.now() - frozenAt : store.sync.silenceMs;
  // Live but silent for longer than two beacons: the link may be dead before the watchdog says so.
  const quiet = status === 'live' && silence > 2 * beaconMs + 1000;
  const tone = quiet ? 'warn' : toneOf(status);
  const title = `${LABELS[status] ?? status}: ${HELP[status] ?? ''} (reason: ${reason})${quiet ? ` — no message for ${formatAge(silence)}` : ''}`;
  return (
    <div class={`sync tone-${tone}`} data-testid="sync-status" data-status={status} data-version={version} data-epoch={epoch ?? ''} title={title}>
      <span class="sync-state">
        <span class="dot" aria-hidden="true" />
        <span aria-live="polite">{LABELS[status] ?? status}</span>
        <span class="visually-hidden">: {reason}</span>
      </span>
      <span class="sync-meta">
        <span class="sync-item">
          <span class="muted">version</span> <span class="num">{version >= 0 ? version.toLocaleString() : '—'}</span>
        </span>
        <span class="sync-item" title={epoch ? `epoch ${epoch}` : 'no epoch yet'}>
          <span class="muted">epoch</span> <code>{short(epoch)}</code>
        </span>
        <span class="sync-item sync-age" title="time since the last message from the server (deltas or the sync beacon)">
          <span class="muted">last msg</span> <span class="num">{Number.isFinite(silence) ? `${formatAge(silence)} ago` : 'never'}</span>
        </span>
      </span>
    </div>
  );
}
