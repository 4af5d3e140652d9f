// Brute-force protection for logins: failures counted per account and per client address, and a
// lockout once either reaches its limit. In memory, bounded in entries and in key size, so cycling
// usernames or addresses cannot grow it. Pure: the clock is injected.
import { createHash } from 'node:crypto';
import { formatIp, maskBytes, parseIp } from './client-address.js';

export interface LoginLimitRule {
  /** Failures allowed in one window; the next attempt is refused. */
  max: number;
  windowMs: number;
}

export interface LoginLimiterOptions {
  perAccount: LoginLimitRule;
  perAddress: LoginLimitRule;
  /** How long a key stays locked once it reaches `max`; defaults to its rule's `windowMs`. */
  lockoutMs?: number;
  now?: () => number;
  /** Accounts plus addresses remembered; the least valuable are forgotten first. */
  maxEntries?: number;
}

export type LoginCheck = { allowed: true } | { allowed: false; retryAfterMs: number; scope: 'account' | 'address' };

export const DEFAULT_LOGIN_LIMITS: Readonly<Required<Omit<LoginLimiterOptions, 'lockoutMs' | 'now'>>> = Object.freeze({
  perAccount: Object.freeze({ max: 5, windowMs: 15 * 60_000 }),
  perAddress: Object.freeze({ max: 20, windowMs: 15 * 60_000 }),
  maxEntries: 10_000,
});

interface Entry {
  failures: number;
  /** Fixed window: it starts at the first failure and the count resets when it ends. */
  windowEnd: number;
  /** Set when `failures` reaches `max`; 0 while not locked. */
  lockedUntil: number;
}

type Scope = 'account' | 'address';

/**
 * Fixed windows, not sliding: a window opens at a key's first failure and its count is dropped
 * when it ends. Reaching `max` locks the key for `lockoutMs` from that failure, whatever is left
 * of the window, so at most `max` guesses per key fit in any lockout period. O(1) per key.
 */
export class LoginLimiter {
  readonly #rules: Record<Scope, LoginLimitRule & { lockoutMs: number }>;
  readonly #now: () => number;
  readonly #maxEntries: number;
  // Two maps in least-recently-failed order. Counting entries are evicted before locked ones, so
  // an attacker flooding new usernames cannot push out the lock on the account under attack:
  // they would first have to lock `maxEntries` keys themselves.
  readonly #counting = new Map<string, Entry>();
  readonly #locked = new Map<string, Entry>();

  constructor(options: Partial<LoginLimiterOptions> = {}) {
    const perAccount = validRule('perAccount', options.perAccount ?? DEFAULT_LOGIN_LIMITS.perAccount);
    const perAddress = validRule('perAddress', options.perAddress ?? DEFAULT_LOGIN_LIMITS.perAddress);
    if (options.lockoutMs !== undefined) positive('lockoutMs', options.lockoutMs);
    this.#rules = {
      account: { ...perAccount, lockoutMs: options.lockoutMs ?? perAccount.windowMs },
      address: { ...perAddress, lockoutMs: options.lockoutMs ?? perAddress.windowMs },
    };
    this.#now = options.now ?? Date.now;
    this.#maxEntries = options.maxEntries ?? DEFAULT_LOGIN_LIMITS.maxEntries;
    // One login touches two keys, so fewer than two would evict the account it just counted.
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 2) throw new RangeError('maxEntries must be an integer of at least 2');
  }

  /** Keys remembered now (accounts plus addresses). */
  get size(): number {
    return this.#counting.size + this.#locked.size;
  }

  /** Call before verifying a password; when refused, do not verify it at all. */
  check(account: string, address: string): LoginCheck {
    const now = this.#now();
    let refusal: LoginCheck = { allowed: true };
    for (const [scope, key] of this.#keys(account, address)) {
      const entry = this.#live(key, now);
      if (!entry || entry.lockedUntil <= now) continue;
      const retryAfterMs = entry.lockedUntil - now;
      // Both locked: the longer wait is the one that matters to the client.
      if (refusal.allowed || retryAfterMs > refusal.retryAfterMs) refusal = { allowed: false, retryAfterMs, scope };
    }
    return refusal;
  }

  /** A wrong password (or unknown account: count it the same, so accounts cannot be probed). */
  recordFailure(account: string, address: string): void {
    const now = this.#now();
    for (const [scope, key] of this.#keys(account, address)) {
      const rule = this.#rules[scope];
      const entry = this.#live(key, now) ?? { failures: 0, windowEnd: now + rule.windowMs, lockedUntil: 0 };
      this.#counting.delete(key);
      this.#locked.delete(key);
      entry.failures++;
      // A failure while locked (a caller that skipped check) does not extend the lock: otherwise
      // anyone could keep a victim's account locked out with one request per lockout.
      if (entry.failures >= rule.max && entry.lockedUntil === 0) entry.lockedUntil = now + rule.lockoutMs;
      (entry.lockedUntil > 0 ? this.#locked : this.#counting).set(key, entry);
    }
    this.#evict(now);
  }

  /** A successful login clears the account's failures; the address's stay, or one valid account
   *  would launder an address's guesses at other accounts. */
  recordSuccess(account: string, _address: string): void {
    const key = accountKey(account);
    this.#counting.delete(key);
    this.#locked.delete(key);
  }

  #keys(account: string, address: string): Array<[Scope, string]> {
    return [
      ['account', accountKey(account)],
      ['address', addressKey(address)],
    ];
  }

  /** The entry of `key` unless its window or lock has ended, in which case it is forgotten. */
  #live(key: string, now: number): Entry | undefined {
    const entry = this.#counting.get(key) ?? this.#locked.get(key);
    if (!entry) return undefined;
    const ended = entry.lockedUntil > 0 ? now >= entry.lockedUntil : now >= entry.windowEnd;
    if (!ended) return entry;
    this.#counting.delete(key);
    this.#locked.delete(key);
    return undefined;
  }

  #evict(now: number): void {
    // Locks are in order of when they were set, so expired ones gather at the front.
    for (const [key, entry] of this.#locked) {
      if (this.size <= this.#maxEntries || entry.lockedUntil > now) break;
      this.#locked.delete(key);
    }
    while (this.size > this.#maxEntries) {
      const victims = this.#counting.size > 0 ? this.#counting : this.#locked;
      const oldest = victims.keys().next().value;
      if (oldest === undefined) break;
      victims.delete(oldest);
    }
  }
}

/** Case-insensitive, and NFKC so look-alike forms of one name share a count; long names hashed. */
export function accountKey(account: string): string {
  return boundedKey('account', account.normalize('NFKC').trim().toLowerCase());
}

/** The canonical IP; an IPv6 client is counted by its /64, the block one host usually owns. */
export function addressKey(address: string): string {
  const bytes = parseIp(address);
  if (bytes === null) return boundedKey('address', address);
  return bytes.length === 16 ? `address:${formatIp(maskBytes(bytes, 64))}/64` : `address:${formatIp(bytes)}`;
}

// Entries are bounded in number; this bounds each key, so a 1 MB username costs 64 bytes.
function boundedKey(prefix: string, value: string): string {
  return value.length <= 128 ? `${prefix}:${value}` : `${prefix}#${createHash('sha256').update(value).digest('hex')}`;
}

function validRule(name: string, rule: LoginLimitRule): LoginLimitRule {
  if (!Number.isInteger(rule.max) || rule.max < 1) throw new RangeError(`${name}.max must be a positive integer`);
  positive(`${name}.windowMs`, rule.windowMs);
  return { max: rule.max, windowMs: rule.windowMs };
}

function positive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of ms`);
}
