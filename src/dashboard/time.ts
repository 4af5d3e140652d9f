// Time arithmetic and formatting for the dashboard: ages (clamped, never negative), durations,
// clock times, and the host staleness rule (online but silent for 3 heartbeats).

export const HEARTBEAT_MS = 5_000;
export const STALE_AFTER_MS = 3 * HEARTBEAT_MS;

/** Milliseconds from `iso` to `now`, clamped at 0 (a clock ahead of ours is "just now"); null if unknown. */
export function ageOf(iso: string | null, now: number): number | null {
  if (!iso) return null;
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return null;
  return Math.max(0, now - at);
}

/** Compact age for narrow cells: `4 s`, `12 min`, `5 h`, `6 d` (the exact time goes in a title). */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

/** A duration with one more unit of precision than formatAge: `42 s`, `3 min 07 s`, `2 h 05 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** `14:03:09` today, `Nov 25 14:03:09` on another day. */
export function formatWhen(iso: string | null, now: number = Date.now()): string {
  if (!iso) return '—';
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return '—';
  const sameDay = new Date(now).toDateString() === at.toDateString();
  return sameDay ? clockFormat.format(at) : `${dayFormat.format(at)} ${clockFormat.format(at)}`;
}

/** Local date and time plus the UTC original, for titles. */
export function formatFull(iso: string | null): string {
  if (!iso) return '';
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : `${fullFormat.format(at)} (${iso})`;
}

/** Duration between two timestamps, or from `from` to `now` while it runs. */
export function between(from: string | null, to: string | null, now: number): number | null {
  if (!from) return null;
  const start = Date.parse(from);
  const end = to ? Date.parse(to) : now;
  if (Number.isNaN(start) || Number.isNaN(end)) return null;
  return Math.max(0, end - start);
}
