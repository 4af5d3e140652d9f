// The rules for ids and for names people read: hostnames, user names, and the free-text names of
// pipelines and tokens. One rule each, shared by the server (schemas), the client and the dashboard (form
// checks), so a name one of them accepts the others accept too. Free of zod, so the browser
// bundle can use them without the schema library.

/** Identifiers of hosts, commands, pipelines and events: safe in URLs, HTML and object keys. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const ID_RULE = 'must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit';

/** Names that would reach Object.prototype if used as a property key. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function isId(id: string): boolean {
  return ID_PATTERN.test(id) && !RESERVED_KEYS.has(id);
}

/**
 * RFC 1123 host names: ASCII letters, digits and hyphens, in dot-separated labels of 1-63
 * characters that neither start nor end with a hyphen; 253 characters at most. Nothing else:
 * no Unicode look-alikes, no invisible or direction-changing characters.
 */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
export const HOSTNAME_RULE = 'must be an RFC 1123 host name: ASCII letters, digits and hyphens in dot-separated labels of 1-63 characters that do not start or end with a hyphen, 253 characters at most';

/** User names: ASCII, so that no two can look alike; compared ignoring case. */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const USER_NAME_RULE = 'must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit';

/**
 * Free-text names (pipelines, tokens): any script, spaces inside, but no control characters,
 * no formatting characters (bidi overrides and isolates, zero-width spaces and joiners), no
 * line or paragraph separators, and no space at either end.
 */
const DISPLAY_NAME = /^[^\p{C}\p{Z}](?:[^\p{C}\p{Zl}\p{Zp}]*[^\p{C}\p{Z}])?$/u;
export const DISPLAY_NAME_RULE = 'must be printable text: no control, formatting (bidi, zero-width) or line-break characters, and no space at either end';

export function isHostname(name: string): boolean {
  return HOSTNAME.test(name);
}

export function isUserName(name: string): boolean {
  return USER_NAME.test(name);
}

export function isDisplayName(name: string): boolean {
  return DISPLAY_NAME.test(name);
}

/** Two names are the same name when they differ only in case or in compatibility form (full-width letters). */
export function sameName(a: string, b: string): boolean {
  return a.normalize('NFKC').toLowerCase() === b.normalize('NFKC').toLowerCase();
}
