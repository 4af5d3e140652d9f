// The name rules every side shares: RFC 1123 hostnames, ASCII user names, printable display
// names; and the admission rule that hostnames differing only in case are one name.
import { describe, expect, it } from 'vitest';
import { checkAdmission, checkChange, emptyState, applyChange } from './fleet-state.js';
import { isDisplayName, isHostname, isUserName, sameName } from './names.js';
import type { Change, Host } from './schema.js';

describe('isHostname', () => {
  it.each(['web-1', 'a', 'WEB-1', 'web-1.example.org', '1host', 'x'.repeat(63), `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`])('accepts %j', (name) => {
    expect(isHostname(name)).toBe(true);
  });

  it.each(['', '-web', 'web-', 'web..1', '.web', 'web.', 'web_1', 'web 1', 'wéb', 'web\u200B', '\u202Eweb', 'x'.repeat(64), `${'a.'.repeat(127)}ab`])('refuses %j', (name) => {
    expect(isHostname(name)).toBe(false);
  });
});

describe('isUserName and isDisplayName', () => {
  it('takes ASCII user names only', () => {
    expect(isUserName('alice.o-k_2')).toBe(true);
    for (const name of ['', '.alice', 'alïce', 'alice\u200B', 'a'.repeat(65)]) expect(isUserName(name)).toBe(false);
  });

  it('takes printable names in any script and refuses invisible or reordering characters', () => {
    for (const name of ['deploy', 'Prüfung: Rollout', 'CI – nightly 😀', '夜間 デプロイ']) expect(isDisplayName(name)).toBe(true);
    for (const name of ['', ' lead', 'trail ', 'a\u0000b', 'a\nb', 'a\u2028b', 'a\u200Bb', 'a\u200Db', 'a\u202Eb', 'a\u2066b', 'a\uFEFFb', '\u00A0x']) expect(isDisplayName(name)).toBe(false);
  });

  it('treats names differing in case or compatibility form as one', () => {
    expect(sameName('web-B', 'WEB-b')).toBe(true);
    expect(sameName('ｗeb', 'web')).toBe(true);
    expect(sameName('web-1', 'web-2')).toBe(false);
  });
});

describe('checkAdmission', () => {
  const compartment = { status: 'unknown', message: '', checked_at: null } as const;
  const host = (id: string, hostname: string): Host => ({ id, hostname, host_type: 'nixos', status: 'online', last_seen: null, agent_version: null, generation: null, os_version: null, nixpkgs_version: null, metrics: null, pending_command: null, compartments: { git: compartment, lock: compartment, system: compartment, tests: compartment }, created_at: '2026-01-01T00:00:00.000Z' });

  it('refuses a hostname another host holds in another case, where the fold would allow it', () => {
    const state = emptyState();
    applyChange(state, { type: 'host_added', host: host('a', 'web-b') });
    const add: Change = { type: 'host_added', host: host('b', 'WEB-B') };
    expect(checkChange(state, add)).toBeNull(); // a stored log holding both still folds the same
    expect(checkAdmission(state, add)).toMatchObject({ code: 'conflict' });
    applyChange(state, { type: 'host_added', host: host('c', 'web-c') });
    expect(checkAdmission(state, { type: 'host_updated', id: 'c', fields: { hostname: 'Web-B' } })).toMatchObject({ code: 'conflict' });
    expect(checkAdmission(state, { type: 'host_updated', id: 'a', fields: { hostname: 'WEB-B' } })).toBeNull();
    expect(checkAdmission(state, { type: 'host_updated', id: 'c', fields: { status: 'offline' } })).toBeNull();
  });
});
