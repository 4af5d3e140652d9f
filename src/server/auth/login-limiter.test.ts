// Login brute-force limits with an injected clock: per-account lockout, the per-address limit
// across accounts, attempts counted when admitted (not when their hash ends), windows and
// lockouts ending, success clearing the account only, and memory bounded under a flood of
// usernames without losing the lock under attack.
import { describe, expect, it } from 'vitest';
import { LoginLimiter, accountKey, addressKey, type LoginAttempt, type LoginLimiterOptions } from './login-limiter.js';

const MINUTE = 60_000;
const WINDOW = 15 * MINUTE;

function setup(options: Partial<LoginLimiterOptions> = {}): { limiter: LoginLimiter; advance: (ms: number) => void } {
  let now = 1_000_000;
  const limiter = new LoginLimiter({
    perAccount: { max: 5, windowMs: WINDOW },
    perAddress: { max: 20, windowMs: WINDOW },
    now: () => now,
    ...options,
  });
  return { limiter, advance: (ms) => (now += ms) };
}

/** `times` wrong guesses, each admitted and left counted. */
function fail(limiter: LoginLimiter, account: string, address: string, times = 1): void {
  for (let i = 0; i < times; i++) expect(limiter.reserve(account, address).allowed).toBe(true);
}

function admitted(limiter: LoginLimiter, account: string, address: string): LoginAttempt {
  const reservation = limiter.reserve(account, address);
  if (!reservation.allowed) throw new Error(`refused: ${JSON.stringify(reservation)}`);
  return reservation.attempt;
}

describe('LoginLimiter', () => {
  it('refuses the 6th attempt on one account, with the time until the lock ends', () => {
    const { limiter, advance } = setup();
    fail(limiter, 'admin', '198.51.100.1', 5);
    expect(limiter.check('admin', '198.51.100.1')).toEqual({ allowed: false, retryAfterMs: WINDOW, scope: 'account' });
    advance(MINUTE);
    expect(limiter.check('admin', '198.51.100.1')).toEqual({ allowed: false, retryAfterMs: WINDOW - MINUTE, scope: 'account' });
  });

  it('counts attempts when they are admitted: of 60 guesses in flight at once, 5 are admitted', () => {
    const { limiter } = setup();
    const decisions = Array.from({ length: 60 }, () => limiter.reserve('admin', '198.51.100.1'));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
    // The right password arriving inside the burst is refused too: the budget is spent.
    expect(limiter.reserve('admin', '198.51.100.1')).toMatchObject({ allowed: false, scope: 'account' });
  });

  it('admits at most the address limit across accounts, however the guesses are timed', () => {
    const { limiter } = setup();
    const decisions = Array.from({ length: 60 }, (_, i) => limiter.reserve(`user${i}`, '198.51.100.1'));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    expect(limiter.reserve('admin', '198.51.100.1')).toMatchObject({ allowed: false, scope: 'address' });
  });

  it('gives the charges back for an attempt that was never evaluated, lifting the lock it set', () => {
    const { limiter } = setup();
    fail(limiter, 'admin', '198.51.100.1', 4);
    const fifth = admitted(limiter, 'admin', '198.51.100.1');
    expect(limiter.check('admin', '198.51.100.1')).toMatchObject({ allowed: false, scope: 'account' });
    fifth.withdrawn();
    fifth.withdrawn(); // settling twice changes nothing
    expect(limiter.check('admin', '198.51.100.1')).toEqual({ allowed: true });
    fail(limiter, 'admin', '198.51.100.1', 1);
    expect(limiter.check('admin', '198.51.100.1')).toMatchObject({ allowed: false, scope: 'account' });
  });

  it('does not refund into a window that began after the attempt was charged', () => {
    const { limiter, advance } = setup();
    const old = admitted(limiter, 'admin', '198.51.100.1');
    advance(WINDOW);
    fail(limiter, 'admin', '198.51.100.1', 5);
    old.withdrawn();
    expect(limiter.check('admin', '198.51.100.1')).toMatchObject({ allowed: false, scope: 'account' });
  });

  it('locks the account from every address, case-insensitively', () => {
    const { limiter } = setup();
    fail(limiter, 'Admin', '198.51.100.1', 5);
    expect(limiter.check('admin', '203.0.113.9')).toMatchObject({ allowed: false, scope: 'account' });
    expect(limiter.check(' ADMIN ', '203.0.113.9')).toMatchObject({ allowed: false, scope: 'account' });
  });

  it('lets the same address try another account until the address limit', () => {
    const { limiter } = setup();
    const address = '198.51.100.1';
    fail(limiter, 'alice', address, 5);
    expect(limiter.check('alice', address)).toMatchObject({ allowed: false, scope: 'account' });
    fail(limiter, 'bob', address, 5);
    fail(limiter, 'carol', address, 5);
    fail(limiter, 'dave', address, 4);
    fail(limiter, 'erin', address, 1); // the 20th failure from this address
    expect(limiter.check('frank', address)).toEqual({ allowed: false, retryAfterMs: WINDOW, scope: 'address' });
    expect(limiter.check('frank', '203.0.113.9')).toEqual({ allowed: true });
  });

  it('allows again once the lockout has passed, with a fresh count', () => {
    const { limiter, advance } = setup();
    fail(limiter, 'admin', '198.51.100.1', 5);
    advance(WINDOW - 1);
    expect(limiter.check('admin', '198.51.100.1').allowed).toBe(false);
    advance(1);
    fail(limiter, 'admin', '198.51.100.1', 5);
    expect(limiter.check('admin', '198.51.100.1').allowed).toBe(false);
  });

  it('drops failures when their window ends before reaching the limit (fixed window)', () => {
    const { limiter, advance } = setup();
    fail(limiter, 'admin', '198.51.100.1', 4);
    advance(WINDOW);
    fail(limiter, 'admin', '198.51.100.1', 4);
    expect(limiter.check('admin', '198.51.100.1')).toEqual({ allowed: true });
  });

  it('uses lockoutMs when given, and does not extend a lock on further attempts', () => {
    const { limiter, advance } = setup({ lockoutMs: 60 * MINUTE });
    fail(limiter, 'admin', '198.51.100.1', 5);
    advance(30 * MINUTE);
    expect(limiter.reserve('admin', '198.51.100.1')).toMatchObject({ allowed: false, retryAfterMs: 30 * MINUTE });
    expect(limiter.check('admin', '198.51.100.1')).toMatchObject({ allowed: false, retryAfterMs: 30 * MINUTE });
    advance(30 * MINUTE);
    expect(limiter.check('admin', '198.51.100.1')).toEqual({ allowed: true });
  });

  it('clears the account on success but keeps the address count', () => {
    const { limiter } = setup({ perAddress: { max: 6, windowMs: WINDOW } });
    fail(limiter, 'admin', '198.51.100.1', 3);
    admitted(limiter, 'ADMIN', '198.51.100.1').succeeded();
    fail(limiter, 'admin', '198.51.100.1', 3);
    expect(limiter.check('admin', '203.0.113.9')).toEqual({ allowed: true });
    expect(limiter.check('someone', '198.51.100.1')).toMatchObject({ allowed: false, scope: 'address' });
  });

  it('reports the longer wait when both the account and the address are locked', () => {
    const { limiter, advance } = setup({ perAddress: { max: 5, windowMs: WINDOW } });
    fail(limiter, 'x', '198.51.100.1', 5); // locks address 198.51.100.1 at t0
    advance(MINUTE);
    fail(limiter, 'admin', '203.0.113.9', 5); // locks admin at t0 + 1 min
    expect(limiter.check('admin', '198.51.100.1')).toEqual({ allowed: false, retryAfterMs: WINDOW, scope: 'account' });
  });

  it('counts an IPv6 client by its /64 and a mapped IPv4 as IPv4', () => {
    const { limiter } = setup({ perAddress: { max: 3, windowMs: WINDOW } });
    fail(limiter, 'a', '2001:db8:1:2::1');
    fail(limiter, 'b', '2001:db8:1:2:ffff::9');
    fail(limiter, 'c', '2001:DB8:1:2:0:0:0:7');
    expect(limiter.check('d', '2001:db8:1:2::abcd')).toMatchObject({ allowed: false, scope: 'address' });
    expect(limiter.check('d', '2001:db8:1:3::1')).toEqual({ allowed: true });
    expect(addressKey('::ffff:198.51.100.1')).toBe(addressKey('198.51.100.1'));
  });

  it('keeps memory within maxEntries under 100k distinct usernames', () => {
    const { limiter } = setup({ maxEntries: 1000 });
    for (let i = 0; i < 100_000; i++) {
      fail(limiter, `user${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      if (i % 997 === 0) expect(limiter.size).toBeLessThanOrEqual(1000);
    }
    expect(limiter.size).toBeLessThanOrEqual(1000);
  });

  it('does not let a username flood evict the lock on the account under attack', () => {
    const { limiter } = setup({ maxEntries: 100 });
    fail(limiter, 'admin', '198.51.100.1', 5);
    for (let i = 0; i < 10_000; i++) fail(limiter, `junk${i}`, `203.0.${(i >> 8) & 255}.${i & 255}`);
    expect(limiter.size).toBeLessThanOrEqual(100);
    expect(limiter.check('admin', '192.0.2.1')).toMatchObject({ allowed: false, scope: 'account' });
  });

  it('forgets expired locks before evicting counts that are still running', () => {
    const { limiter, advance } = setup({ maxEntries: 4, perAddress: { max: 5, windowMs: WINDOW } });
    fail(limiter, 'old', '198.51.100.1', 5); // two locks, which then expire
    advance(WINDOW);
    fail(limiter, 'victim', '198.51.100.2', 3);
    fail(limiter, 'y', '198.51.100.3'); // six keys: the two expired locks must go
    expect(limiter.size).toBe(4);
    fail(limiter, 'victim', '198.51.100.4');
    fail(limiter, 'victim', '198.51.100.5');
    expect(limiter.check('victim', '198.51.100.6')).toMatchObject({ allowed: false, scope: 'account' });
  });

  it('bounds the size of each key', () => {
    expect(accountKey('a'.repeat(1_000_000)).length).toBeLessThan(100);
    expect(addressKey('x'.repeat(1_000_000)).length).toBeLessThan(100);
    expect(accountKey('a'.repeat(1_000_000))).not.toBe(accountKey('a'.repeat(999_999)));
  });

  it('normalizes account names: case, surrounding spaces and compatibility forms', () => {
    expect(accountKey('Admin')).toBe(accountKey('admin'));
    expect(accountKey('  admin ')).toBe(accountKey('admin'));
    expect(accountKey('ａｄｍｉｎ')).toBe(accountKey('admin')); // full-width letters
  });

  it('rejects nonsensical options', () => {
    expect(() => new LoginLimiter({ perAccount: { max: 0, windowMs: 1 } })).toThrow(RangeError);
    expect(() => new LoginLimiter({ perAddress: { max: 1, windowMs: 0 } })).toThrow(RangeError);
    expect(() => new LoginLimiter({ lockoutMs: -1 })).toThrow(RangeError);
    expect(() => new LoginLimiter({ maxEntries: 1 })).toThrow(RangeError);
  });

  it('works with the defaults', () => {
    const limiter = new LoginLimiter();
    for (let i = 0; i < 5; i++) fail(limiter, 'admin', '198.51.100.1');
    expect(limiter.check('admin', '198.51.100.1')).toMatchObject({ allowed: false, scope: 'account' });
  });
});
