// Password hashing: round trip, salting, stored strings that are malformed or tampered with are
// false (never a throw, never an unbounded KDF), the concurrency limiter, and the policy.
import { describe, expect, it } from 'vitest';
import {
  KdfBusyError,
  KdfLimiter,
  checkPasswordStrength,
  hashPassword,
  needsRehash,
  randomPassword,
  verifyPassword,
} from './passwords.js';

const PASSWORD = 'correct horse battery staple';
// One hash shared by the tests: each costs ~80 ms of CPU.
const stored = hashPassword(PASSWORD);

describe('hashPassword / verifyPassword', () => {
  it('produces scrypt$N$r$p$salt$hash with the default parameters', async () => {
    expect(await stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  });

  it('verifies the right password and refuses a wrong one', async () => {
    expect(await verifyPassword(PASSWORD, await stored)).toBe(true);
    expect(await verifyPassword(PASSWORD + ' ', await stored)).toBe(false);
    expect(await verifyPassword('', await stored)).toBe(false);
  });

  it('salts: two hashes of one password differ and both verify', async () => {
    const other = await hashPassword(PASSWORD);
    expect(other).not.toBe(await stored);
    expect(await verifyPassword(PASSWORD, other)).toBe(true);
  });

  it('matches a password whatever its Unicode normalization', async () => {
    const composed = 'caf\u00e9 au lait, merci';
    const hash = await hashPassword(composed);
    expect(await verifyPassword(composed.normalize('NFD'), hash)).toBe(true);
  });

  it('refuses an over-long password without hashing it', async () => {
    expect(await verifyPassword('x'.repeat(1025), await stored)).toBe(false);
  });

  it('says a hash with today’s parameters needs no rehash, and others do', async () => {
    expect(needsRehash(await stored)).toBe(false);
    expect(needsRehash((await stored).replace('$32768$', '$16384$'))).toBe(true);
    expect(needsRehash('garbage')).toBe(true);
  });
});

describe('verifyPassword with a malformed or tampered stored string', () => {
  const fields = async (): Promise<string[]> => (await stored).split('$');
  const withField = async (index: number, value: string): Promise<string> => {
    const parts = await fields();
    parts[index] = value;
    return parts.join('$');
  };

  it.each([
    ['a huge N (memory exhaustion)', 1, String(2 ** 30)],
    ['N just over the cap', 1, String(2 ** 21)],
    ['N = 2^20 with r = 8 (1 GiB)', 1, String(2 ** 20)],
    ['N not a power of two', 1, '30000'],
    ['N tiny', 1, '2'],
    ['N with a sign', 1, '+32768'],
    ['N with an exponent', 1, '3.2768e4'],
    ['N with a leading zero', 1, '032768'],
    ['r zero', 2, '0'],
    ['r huge', 2, '1000000'],
    ['p huge', 3, '1000'],
    ['an unknown algorithm', 0, 'argon2id'],
    ['garbage base64 salt', 4, '!!!not base64!!!'],
    ['unpadded base64 hash', 5, 'QUJDREVGR0hJSktMTU5PUA'],
    ['non-canonical base64 hash (stray low bits)', 5, 'QUJDREVGR0hJSktMTU5PUB=='],
    ['base64url instead of base64', 4, 'c2FsdHNhbHRzYWx0c2-_'],
    ['an empty hash', 5, ''],
    ['a too short hash', 5, 'AAAA'],
  ])('is false for %s', async (_label, index, value) => {
    await expect(verifyPassword(PASSWORD, await withField(index, value))).resolves.toBe(false);
  });

  it.each([
    ['', 'empty'],
    ['scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA==', 'five fields'],
    ['scrypt$32768$8$1$a$b$c', 'seven fields'],
    ['$$$$$', 'empty fields'],
    ['plaintext-password', 'no fields'],
    ['scrypt$' + 'A'.repeat(10_000), 'an enormous string'],
  ])('is false for %j (%s)', async (value) => {
    await expect(verifyPassword(PASSWORD, value)).resolves.toBe(false);
  });

  it('is false for non-string stored values', async () => {
    await expect(verifyPassword(PASSWORD, undefined as unknown as string)).resolves.toBe(false);
    await expect(verifyPassword(PASSWORD, null as unknown as string)).resolves.toBe(false);
  });

  it('is false when the hash bytes were altered', async () => {
    const parts = await fields();
    const hash = Buffer.from(parts[5]!, 'base64');
    hash[0] = hash[0]! ^ 1;
    expect(await verifyPassword(PASSWORD, await withField(5, hash.toString('base64')))).toBe(false);
  });

  it('verifies a hash made with other valid parameters', async () => {
    // Parameters are read from the string: an older, cheaper hash still verifies.
    const { scryptSync } = await import('node:crypto');
    const salt = Buffer.alloc(16, 7);
    const key = scryptSync(PASSWORD, salt, 32, { N: 1024, r: 8, p: 1 });
    const old = `scrypt$1024$8$1$${salt.toString('base64')}$${key.toString('base64')}`;
    expect(await verifyPassword(PASSWORD, old)).toBe(true);
    expect(needsRehash(old)).toBe(true);
  });
});

describe('KdfLimiter', () => {
  const deferred = (): { promise: Promise<void>; resolve: () => void } => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  it('never runs more than `concurrency` jobs at once', async () => {
    const limiter = new KdfLimiter({ concurrency: 2, maxQueue: 64 });
    let running = 0;
    let peak = 0;
    const jobs = Array.from({ length: 20 }, (_, i) =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 1 + (i % 3)));
        running--;
        return i;
      }),
    );
    expect(limiter.active).toBe(2);
    expect(limiter.queued).toBe(18);
    expect(await Promise.all(jobs)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(2);
    expect(limiter.active).toBe(0);
  });

  it('bounds real scrypt hashes too', async () => {
    const limiter = new KdfLimiter({ concurrency: 1, maxQueue: 10 });
    const hashes = [hashPassword('a'.repeat(12), limiter), hashPassword('b'.repeat(12), limiter)];
    expect(limiter.active).toBe(1);
    expect(limiter.queued).toBe(1);
    await Promise.all(hashes);
  });

  it('rejects with kdf_busy beyond the queue, at once, and recovers', async () => {
    const limiter = new KdfLimiter({ concurrency: 2, maxQueue: 3 });
    const gate = deferred();
    const accepted = Array.from({ length: 5 }, () => limiter.run(() => gate.promise));
    const refused = limiter.run(() => gate.promise);
    await expect(refused).rejects.toBeInstanceOf(KdfBusyError);
    await expect(refused).rejects.toMatchObject({ code: 'kdf_busy' });
    gate.resolve();
    await Promise.all(accepted);
    await expect(limiter.run(async () => 'again')).resolves.toBe('again');
  });

  it('passes verifyPassword’s busy error through instead of answering false', async () => {
    const limiter = new KdfLimiter({ concurrency: 1, maxQueue: 0 });
    const gate = deferred();
    const blocker = limiter.run(() => gate.promise);
    await expect(verifyPassword(PASSWORD, await stored, limiter)).rejects.toMatchObject({ code: 'kdf_busy' });
    gate.resolve();
    await blocker;
  });

  it('frees the slot when a job throws, synchronously or not', async () => {
    const limiter = new KdfLimiter({ concurrency: 1, maxQueue: 1 });
    await expect(limiter.run(() => { throw new Error('sync'); })).rejects.toThrow('sync');
    await expect(limiter.run(() => Promise.reject(new Error('async')))).rejects.toThrow('async');
    expect(limiter.active).toBe(0);
    await expect(limiter.run(async () => 1)).resolves.toBe(1);
  });

  it('rejects nonsensical options', () => {
    expect(() => new KdfLimiter({ concurrency: 0, maxQueue: 1 })).toThrow(RangeError);
    expect(() => new KdfLimiter({ concurrency: 1.5, maxQueue: 1 })).toThrow(RangeError);
    expect(() => new KdfLimiter({ concurrency: 1, maxQueue: -1 })).toThrow(RangeError);
  });
});

describe('checkPasswordStrength', () => {
  it.each(['abcdefghijkl', 'correct horse battery staple', 'aaaaaaaaaaab', 'x'.repeat(1023) + 'y'])('accepts %j', (password) => {
    expect(checkPasswordStrength(password)).toBeNull();
  });

  it('refuses short, over-long and one-character passwords with a message', () => {
    expect(checkPasswordStrength('')).toMatch(/at least 12/);
    expect(checkPasswordStrength('abcdefghijk')).toMatch(/at least 12/);
    expect(checkPasswordStrength('x'.repeat(1024) + 'y')).toMatch(/at most 1024/);
    expect(checkPasswordStrength('aaaaaaaaaaaa')).toMatch(/one character/);
    expect(checkPasswordStrength('🔑'.repeat(20))).toMatch(/one character/);
  });

  it('counts characters, not UTF-16 units', () => {
    // Six emoji are twelve UTF-16 units but only six characters.
    expect(checkPasswordStrength('🔑🔒🔓🗝️🚪🔐')).toMatch(/at least 12/);
  });
});

describe('randomPassword', () => {
  it('is 20 URL-safe characters, different each time, and passes the policy', () => {
    const passwords = new Set(Array.from({ length: 100 }, randomPassword));
    expect(passwords.size).toBe(100);
    for (const password of passwords) {
      expect(password).toMatch(/^[A-Za-z0-9_-]{20}$/);
      expect(checkPasswordStrength(password)).toBeNull();
    }
  });
});
