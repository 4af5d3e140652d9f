// Cells of a host row. Status and last-seen follow the one-second clock on their own, so a tick
// re-renders these small cells and never the whole row; metrics and checks are plain functions
// of the host object.
import { memo } from '../memo.js';
import { COMPARTMENT_NAMES } from '../../protocol/constants.js';
import type { Compartments, Host, Metrics } from '../../protocol/schema.js';
import { useStore } from '../context.js';
import { load, percent, usageLevel } from '../format.js';
import { STALE_AFTER_MS, ageOf, formatAge, formatFull } from '../time.js';
import { Badge } from './Badge.js';

/**
 * `last_seen` parsed, per host object: the hosts summary judges every host on every frame, and a
 * host object is replaced on update, never changed, so its parse can be kept with it.
 */
const lastSeenAt = new WeakMap<object, number>();

/** online / offline / unknown from the host, or stale: online but silent for 3 heartbeats. */
export function effectiveStatus(host: Pick<Host, 'status' | 'last_seen'>, now: number): string {
  if (host.status !== 'online') return host.status;
  let at = lastSeenAt.get(host);
  if (at === undefined) {
    at = host.last_seen ? Date.parse(host.last_seen) : NaN;
    lastSeenAt.set(host, at);
  }
  return Number.isNaN(at) || now - at > STALE_AFTER_MS ? 'stale' : 'online';
}

export function StatusCell({ status, lastSeen }: { status: Host['status']; lastSeen: string | null }) {
  const now = useStore().referenceNow.value;
  const shown = effectiveStatus({ status, last_seen: lastSeen }, now);
  const title = shown === 'stale' ? `reported online, but no heartbeat for ${formatAge(ageOf(lastSeen, now) ?? Infinity)} (more than 3 × 5 s)` : `reported ${status}`;
  return (
    <td data-field="status" data-status={shown}>
      <Badge status={shown} title={title} />
    </td>
  );
}

export function LastSeenCell({ lastSeen }: { lastSeen: string | null }) {
  const now = useStore().referenceNow.value;
  const age = ageOf(lastSeen, now);
  return (
    <td data-field="last_seen" class="num" title={lastSeen ? formatFull(lastSeen) : 'never reported'}>
      {age === null ? <span class="muted">never</span> : `${formatAge(age)} ago`}
    </td>
  );
}

function Usage({ label, value }: { label: string; value: number }) {
  const level = usageLevel(value);
  return (
    <span class="usage" title={`${label} ${value.toFixed(1)}%`}>
      <span class="usage-label">{label}</span>
      <span class="bar" aria-hidden="true">
        <span class={`bar-fill level-${level}`} style={{ width: `${Math.min(100, Math.max(0, value))}%` }} />
      </span>
      <span class="usage-value num">{percent(value)}</span>
    </span>
  );
}

export const MetricsView = memo(function MetricsView({ metrics }: { metrics: Metrics | null }) {
  if (!metrics) return <span class="muted">no metrics</span>;
  return (
    <div class="metrics">
      <Usage label="CPU" value={metrics.cpu} />
      <Usage label="RAM" value={metrics.ram} />
      <Usage label="Swap" value={metrics.swap} />
      <span class="usage" title={`load average ${metrics.load}`}>
        <span class="usage-label">Load</span>
        <span class="usage-value num load">{load(metrics.load)}</span>
      </span>
    </div>
  );
});

export const CompartmentsView = memo(function CompartmentsView({ compartments }: { compartments: Compartments }) {
  return (
    <ul class="checks">
      {COMPARTMENT_NAMES.map((name) => {
        const c = compartments[name];
        const checked = c.checked_at ? `checked ${formatFull(c.checked_at)}` : 'never checked';
        const title = `${name}: ${c.status}${c.message ? ` — ${c.message}` : ''} (${checked})`;
        return (
          <li key={name} class={`check tone-${toneFor(c.status)}`} title={title}>
            <span class="check-name">{name}</span>
            <span class="check-status">{c.status}</span>
          </li>
        );
      })}
    </ul>
  );
});

function toneFor(status: string): string {
  return { ok: 'ok', outdated: 'warn', error: 'bad', working: 'busy' }[status] ?? 'idle';
}
