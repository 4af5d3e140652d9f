// Brute-force protection for logins: failures counted per account and per client address, and a
// lockout once either reaches its limit. An attempt is charged as a failure *before* the password
// is checked and given back only once it is proven right, so a burst of parallel guesses is
// counted as it arrives, not as its hashes finish. In memory, bounded in entries and in key size,
// so cycling usernames or addresses cannot grow it. Pure: the clock is injected.
import { createHash } from 'node:crypto';
import { clientBucket } from './client-address.js';

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

export type LoginRefusal = { allowed: false; retryAfterMs: number; scope: 'account' | 'address' };
export type LoginCheck = { allowed: true } | LoginRefusal;

/**
 * An attempt admitted by `reserve`, already counted as a failure. Settle it once: `succeeded`
 * when the credentials were right, `withdrawn` when nothing was evaluated; a wrong guess needs
 * no call (it stays counted).
 */
export interface LoginAttempt {
  /** Clears the account's failures and gives the address back this attempt's charge. */
  succeeded(): void;
  /** Gives both charges back: the password was never checked (say, the KDF was busy). */
  withdrawn(): void;
}

export type LoginReservation = { allowed: true; attempt: LoginAttempt } | LoginRefusal;

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

  /** Whether an attempt would be admitted now, without counting one (for answers that check nothing). */
  check(account: string, address: string): LoginCheck {
    return this.#refusal(account, address, this.#now()) ?? { allowed: true };
  }

  /**
   * Call before verifying a password: refused while the account or the address is locked;
   * otherwise the attempt is counted as a failure at once, so however many guesses arrive
   * together, at most `max` per key are ever admitted. Settle the returned attempt.
   */
  reserve(account: string, address: string): LoginReservation {
    const now = this.#now();
    const refusal = this.#refusal(account, address, now);
    if (refusal) return refusal;
    const [accountKey_, addressKey_] = [accountKey(account), addressKey(address)];
    const onAccount = this.#charge('account', accountKey_, now);
    const onAddress = this.#charge('address', addressKey_, now);
    this.#evict(now);
    let settled = false;
    const settle = (refundAccount: boolean): void => {
      if (settled) return;
      settled = true;
      this.#refund('address', addressKey_, onAddress);
      if (refundAccount) this.#refund('account', accountKey_, onAccount);
      else this.#forget(accountKey_);
    };
    return {
      allowed: true,
      attempt: {
        // The account's count is cleared; the address keeps its other failures, or one valid
        // account would launder an address's guesses at other accounts.
        succeeded: () => settle(false),
        withdrawn: () => settle(true),
      },
    };
  }

  #refusal(account: string, address: string, now: number): LoginRefusal | null {
    let refusal: LoginRefusal | null = null;
    for (const [scope, key] of this.#keys(account, address)) {
      const entry = this.#live(key, now);
      if (!entry || entry.lockedUntil <= now) continue;
      const retryAfterMs = entry.lockedUntil - now;
      // Both locked: the longer wait is the one that matters to the client.
      if (!refusal || retryAfterMs > refusal.retryAfterMs) refusal = { allowed: false, retryAfterMs, scope };
    }
    return refusal;
  }

  /** Counts one failure on `key`; reaching `max` locks it for `lockoutMs` from now. */
  #charge(scope: Scope, key: string, now: number): Entry {
    const rule = this.#rules[scope];
    const entry = this.#live(key, now) ?? { failures: 0, windowEnd: now + rule.windowMs, lockedUntil: 0 };
    this.#forget(key); // re-inserted last: the maps are in least-recently-failed order
    entry.failures++;
    if (entry.failures >= rule.max && entry.lockedUntil === 0) entry.lockedUntil = now + rule.lockoutMs;
    (entry.lockedUntil > 0 ? this.#locked : this.#counting).set(key, entry);
    return entry;
  }

  /** Takes back one failure from the entry it was charged to, unless that window has ended since. */
  #refund(scope: Scope, key: string, charged: Entry): void {
    const entry = this.#live(key, this.#now());
    if (entry !== charged || entry.failures === 0) return;
    entry.failures--;
    if (entry.lockedUntil > 0 && entry.failures < this.#rules[scope].max) {
      // The lock came from the charge just given back: lift it.
      entry.lockedUntil = 0;
      this.#locked.delete(key);
      this.#counting.set(key, entry);
    }
  }

  #forget(key: string): void {
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
    this.#forget(key);
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
  const bucket = clientBucket(address);
  return bucket === null ? boundedKey('address', address) : `address:${bucket}`;
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
