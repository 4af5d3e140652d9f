// A status badge: a coloured dot and the status word, so colour is never the only signal. One
// tone table for every status in the protocol.
import type { ComponentChildren } from 'preact';

export type Tone = 'ok' | 'warn' | 'bad' | 'idle' | 'busy' | 'info';

const TONES: Record<string, Tone> = {
  online: 'ok', ok: 'ok', success: 'ok', complete: 'ok', live: 'ok',
  stale: 'warn', outdated: 'warn', partial: 'warn', warning: 'warn', resyncing: 'warn',
  offline: 'bad', error: 'bad', failed: 'bad', timeout: 'bad',
  unknown: 'idle', pending: 'idle', cancelled: 'idle', skipped: 'idle', idle: 'idle',
  running: 'busy', working: 'busy', connecting: 'busy',
  info: 'info',
};

export function toneOf(status: string): Tone {
  return TONES[status] ?? 'idle';
}

export function Badge({ status, title, children, class: className }: { status: string; title?: string | undefined; children?: ComponentChildren; class?: string }) {
  return (
    <span class={`badge tone-${toneOf(status)}${className ? ` ${className}` : ''}`} title={title}>
      {children ?? status}
    </span>
  );
}
