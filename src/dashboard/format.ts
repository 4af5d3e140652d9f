// Small text formatters for entity fields: short ids, Nix generations, percentages, loads.

/** The first `n` characters of an id or epoch. */
export function short(text: string | null, n = 8): string {
  return text === null ? '—' : text.slice(0, n);
}

/**
 * A Nix generation for a narrow column: the store hash's first 8 characters for a store path
 * (`/nix/store/<hash>-nixos-system-…`), else the value cut to 12 characters.
 */
export function shortGeneration(generation: string | null): string {
  if (!generation) return '—';
  const base = generation.replace(/^\/nix\/store\//, '');
  const hash = /^([0-9a-z]{32})-/.exec(base);
  if (hash) return hash[1]!.slice(0, 8);
  return base.length > 12 ? `${base.slice(0, 11)}…` : base;
}

export function percent(value: number): string {
  return `${Math.round(value)}%`;
}

export function load(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(2);
}

/** Threshold class for a usage bar. */
export function usageLevel(value: number): 'ok' | 'warn' | 'bad' {
  return value >= 90 ? 'bad' : value >= 75 ? 'warn' : 'ok';
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}
