// UI-only state that is not part of the fleet: the host selection, open dialogs and the notices
// (API errors). Module-level signals; the fleet itself lives in store.ts.
import { signal } from '@preact/signals';

/** Ids of the selected hosts. */
export const selection = signal<ReadonlySet<string>>(new Set());

export function toggleHost(id: string): void {
  const next = new Set(selection.value);
  if (!next.delete(id)) next.add(id);
  selection.value = next;
}

export function setSelection(ids: Iterable<string>): void {
  selection.value = new Set(ids);
}

/** Drops selected ids that are no longer hosts. */
export function pruneSelection(hosts: ReadonlyMap<string, unknown>): void {
  const current = selection.peek();
  for (const id of current) {
    if (!hosts.has(id)) {
      selection.value = new Set([...current].filter((x) => hosts.has(x)));
      return;
    }
  }
}

/** The operations dialog: open for these hosts, or null. */
export const opDialog = signal<{ hostIds: string[] } | null>(null);
/** The pipeline dialog: open for these hosts, or null. */
export const pipelineDialog = signal<{ hostIds: string[] } | null>(null);

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  title: string;
  details: string[];
}

export const notices = signal<readonly Notice[]>([]);
let nextNotice = 1;

export function notify(kind: Notice['kind'], title: string, details: string[] = []): void {
  notices.value = [...notices.value, { id: nextNotice++, kind, title, details }].slice(-5);
}

export function dismiss(id: number): void {
  notices.value = notices.value.filter((n) => n.id !== id);
}
