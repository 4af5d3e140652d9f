// Password hashing with scrypt in a self-describing string, its constant-time verification, the
// limiter that bounds how many hashes run at once, and the password policy. No I/O besides the
// KDF itself, which runs on the libuv thread pool.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost parameters as stored in a hash string. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** The parameters of new hashes: N=2^15, r=8 needs 32 MiB and ~80 ms of one core per hash. */
export const SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });
const SALT_BYTES = 16;
const KEY_BYTES = 32;

// Bounds on parameters read back from a stored string, so a tampered or corrupt hash cannot make
// one verification take gigabytes or seconds: N alone is not enough (N=2^20 with r=8 is 1 GiB).
const MAX_N = 2 ** 20;
const MAX_MEMORY_BYTES = 256 * 1024 * 1024;
const MAX_WORK = 2 ** 22; // N·r·p, 16 times the default
const MIN_N = 2 ** 10;

/** Longest password accepted, in characters (code points). */
export const MAX_PASSWORD_LENGTH = 1024;
export const MIN_PASSWORD_LENGTH = 12;

/** Thrown by KdfLimiter.run when its queue is full; the HTTP layer answers 503 + Retry-After. */
export class KdfBusyError extends Error {
  readonly code = 'kdf_busy';
  constructor() {
    super('too many password hashes in progress');
    this.name = 'KdfBusyError';
  }
}

export interface KdfLimiterOptions {
  /** Jobs running at once. Keep it below the libuv pool size (4) so fs and dns are not starved. */
  concurrency: number;
  /** Jobs waiting; one more is refused at once rather than waiting behind a flood. */
  maxQueue: number;
}

/** Runs at most `concurrency` async jobs at once, queues `maxQueue` more and refuses the rest. */
export class KdfLimiter {
  readonly #concurrency: number;
  readonly #maxQueue: number;
  readonly #queue: Array<() => void> = [];
  #active = 0;

  constructor(options: KdfLimiterOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new RangeError('concurrency must be a positive integer');
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) throw new RangeError('maxQueue must be a non-negative integer');
    this.#concurrency = options.concurrency;
    this.#maxQueue = options.maxQueue;
  }

  /** Jobs running now. */
  get active(): number {
    return this.#active;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Runs `fn` when a slot is free; rejects with KdfBusyError at once when the queue is full. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#concurrency && this.#queue.length >= this.#maxQueue) return Promise.reject(new KdfBusyError());
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.#active++;
        // `Promise.resolve().then(fn)` also turns a synchronous throw of fn into a rejection.
        Promise.resolve()
          .then(fn)
          .then(resolve, reject)
          .finally(() => {
            this.#active--;
            this.#queue.shift()?.();
          });
      };
      if (this.#active < this.#concurrency) start();
      else this.#queue.push(start);
    });
  }
}

/** Shared by every caller that passes no limiter: the whole process hashes two at a time. */
export const defaultKdfLimiter = new KdfLimiter({ concurrency: 2, maxQueue: 64 });

/** Hashes a password into `scrypt$N$r$p$saltB64$hashB64`. Rejects with KdfBusyError when busy. */
export async function hashPassword(password: string, limiter: KdfLimiter = defaultKdfLimiter): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const { N, r, p } = SCRYPT_PARAMS;
  const key = await limiter.run(() => derive(password, salt, KEY_BYTES, SCRYPT_PARAMS));
  return ['scrypt', N, r, p, salt.toString('base64'), key.toString('base64')].join('$');
}

/**
 * True when `password` matches `stored`. A malformed, tampered or over-expensive stored string is
 * false, never an exception; only KdfBusyError rejects, and the caller must not count it as a
 * failed login (it is an overload, not a wrong password).
 */
export async function verifyPassword(password: string, stored: string, limiter: KdfLimiter = defaultKdfLimiter): Promise<boolean> {
  if (typeof password !== 'string' || codePoints(password) > MAX_PASSWORD_LENGTH) return false;
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await limiter.run(() => derive(password, parsed.salt, parsed.hash.length, parsed.params));
  return timingSafeEqual(key, parsed.hash);
}

/** True when `stored` was made with other parameters than today's (rehash after a login). */
export function needsRehash(stored: string): boolean {
  const parsed = parseHash(stored);
  if (!parsed) return true;
  const { N, r, p } = parsed.params;
  return N !== SCRYPT_PARAMS.N || r !== SCRYPT_PARAMS.r || p !== SCRYPT_PARAMS.p || parsed.hash.length !== KEY_BYTES;
}

/** null when the password is acceptable, else a message for the user. */
export function checkPasswordStrength(password: string): string | null {
  const length = codePoints(password);
  if (length < MIN_PASSWORD_LENGTH) return `Password must be at least ${MIN_PASSWORD_LENGTH} characters long.`;
  if (length > MAX_PASSWORD_LENGTH) return `Password must be at most ${MAX_PASSWORD_LENGTH} characters long.`;
  if (new Set(password).size === 1) return 'Password must not be one character repeated.';
  return null;
}

/** 20 random URL-safe characters (120 bits): 15 bytes are exactly 20 unbiased base64url chars. */
export function randomPassword(): string {
  return randomBytes(15).toString('base64url');
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

function parseHash(stored: unknown): ParsedHash | null {
  if (typeof stored !== 'string' || stored.length > 512) return null;
  const fields = stored.split('$');
  if (fields.length !== 6 || fields[0] !== 'scrypt') return null;
  const [N, r, p] = fields.slice(1, 4).map(parseSmallInt);
  if (N === undefined || r === undefined || p === undefined) return null;
  if (N < MIN_N || N > MAX_N || (N & (N - 1)) !== 0) return null; // scrypt needs a power of two
  if (r < 1 || r > 32 || p < 1 || p > 16) return null;
  if (scryptMemory({ N, r, p }) > MAX_MEMORY_BYTES || N * r * p > MAX_WORK) return null;
  const salt = decodeBase64(fields[4]);
  const hash = decodeBase64(fields[5]);
  if (!salt || salt.length < 8 || !hash || hash.length < 16 || hash.length > 64) return null;
  return { params: { N, r, p }, salt, hash };
}

/** A plain decimal: no sign, leading zero, exponent or spaces, which Number() would all accept. */
function parseSmallInt(raw: string | undefined): number | undefined {
  return raw !== undefined && /^[1-9]\d{0,7}$/.test(raw) ? Number(raw) : undefined;
}

// Buffer.from(x, 'base64') silently skips junk, so only canonical padded base64 is accepted.
function decodeBase64(raw: string | undefined): Buffer | null {
  if (raw === undefined || raw.length === 0 || raw.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw)) return null;
  const bytes = Buffer.from(raw, 'base64');
  return bytes.toString('base64') === raw ? bytes : null;
}

/** What OpenSSL allocates for scrypt (V plus B); its `maxmem` check uses the same sum. */
function scryptMemory({ N, r, p }: ScryptParams): number {
  return 128 * r * (N + 2) + 128 * r * p;
}

function derive(password: string, salt: Buffer, keyLength: number, params: ScryptParams): Promise<Buffer> {
  // NFC so the same password typed on systems that compose accents differently still matches.
  const secret = password.normalize('NFC');
  const maxmem = scryptMemory(params) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, keyLength, { ...params, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
