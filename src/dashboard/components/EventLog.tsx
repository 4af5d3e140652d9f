// The event log, newest first, filterable by level and by host. One memoized row per event.
import { useSignal, useSignalEffect } from '@preact/signals';
import { memo } from '../memo.js';
import { EVENT_LEVELS } from '../../protocol/constants.js';
import type { EventLogEntry } from '../../protocol/schema.js';
import { useStore } from '../context.js';
import { formatFull, formatWhen } from '../time.js';
import { Badge } from './Badge.js';
import { Options } from './Options.js';

const EventRow = memo(function EventRow({ event }: { event: EventLogEntry }) {
  const details = event.details ? Object.entries(event.details).map(([k, v]) => `${k}=${String(v)}`).join('  ') : '';
  return (
    <li class="event" data-event-id={event.id}>
      <time class="event-time num" dateTime={event.timestamp} title={formatFull(event.timestamp)}>
        {formatWhen(event.timestamp)}
      </time>
      <span class="event-level">
        <Badge status={event.level} />
      </span>
      <span class="event-category">{event.category}</span>
      <span class="event-host">{event.host_id ?? <span class="muted">—</span>}</span>
      <span class="event-message" title={[event.actor && `by ${event.actor}`, event.action && `action ${event.action}`, details].filter(Boolean).join(' · ') || undefined}>
        {event.message}
        {event.actor ? <span class="muted"> — {event.actor}</span> : null}
      </span>
    </li>
  );
});

export function EventLog() {
  const store = useStore();
  const level = useSignal('');
  const host = useSignal('');
  useSignalEffect(() => {
    store.epochResets.value;
    host.value = '';
  });
  const events = store.events.value;
  const hostIds = new Set(store.hostnames.value.keys());
  for (const e of events) if (e.host_id) hostIds.add(e.host_id);
  if (host.value !== '') hostIds.add(host.value);
  const options = [...hostIds].sort();
  const shown = events.filter((e) => (level.value === '' || e.level === level.value) && (host.value === '' || e.host_id === host.value));
  return (
    <>
      <div class="filters">
        <label class="field">
          <span>Level</span>
          <select value={level.value} onChange={(e) => (level.value = e.currentTarget.value)}>
            <option value="">all</option>
            <Options values={EVENT_LEVELS} />
          </select>
        </label>
        <label class="field">
          <span>Host</span>
          <select value={host.value} onChange={(e) => (host.value = e.currentTarget.value)}>
            <option value="">all</option>
            <Options values={options} />
          </select>
        </label>
        <span class="muted num filter-count">
          {shown.length === events.length ? `${events.length} events` : `${shown.length} of ${events.length} events`}
        </span>
      </div>
      {shown.length > 0 ? (
        <ol class="events">
          {shown.map((e) => (
            <EventRow key={e.id} event={e} />
          ))}
        </ol>
      ) : (
        <p class="empty">{events.length === 0 ? 'No event yet.' : 'No event matches the filters.'}</p>
      )}
    </>
  );
}
