// Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP, HMAC-SHA-1): secrets in base32,
// the otpauth:// URI for authenticator apps, and verification that refuses a reused code.
// Pure apart from the random secret; the caller persists the step a verification returns.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Seconds per code, as every authenticator app assumes unless told otherwise. */
export const TOTP_STEP_SECONDS = 30;
export const TOTP_DIGITS = 6;
// 160 bits: the HMAC-SHA-1 block-size recommendation of RFC 4226 §4.
const SECRET_BYTES = 20;
// Steps either side of now that are accepted: one step (30 s) of clock drift each way.
const DRIFT_STEPS = 1;

export type TotpResult = { ok: true; step: number } | { ok: false; reason: 'invalid' | 'reused' };

/** A new random secret: 20 bytes as 32 base32 characters, no padding. */
export function generateTotpSecret(): string {
  return base32Encode(randomBytes(SECRET_BYTES));
}

/** RFC 4648 base32, upper case, without `=` padding (authenticator apps do not want it). */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff; // only the low bits not yet emitted matter
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(buffer >>> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes base32 case-insensitively, ignoring spaces (people copy secrets in groups) and trailing
 * `=` padding. Throws on any other character and on lengths no encoding can produce.
 */
export function base32Decode(text: string): Buffer {
  const clean = normalizeBase32(text);
  // 8 characters carry 5 bytes; a last group of 1, 3 or 6 characters is never produced.
  if ([1, 3, 6].includes(clean.length % 8)) throw new Error('invalid base32: impossible length');
  const out: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const char of clean) {
    const value = BASE32_ALPHABET.indexOf(char);
    buffer = ((buffer << 5) | value) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function normalizeBase32(text: string): string {
  const clean = text.replace(/\s+/g, '').replace(/=+$/, '');
  // Checked before upper-casing: 'ß'.toUpperCase() is 'SS', which would decode.
  const bad = /[^A-Za-z2-7]/.exec(clean);
  if (bad) throw new Error(`invalid base32 character ${JSON.stringify(bad[0])}`);
  return clean.toUpperCase();
}

/** The time step (counter) of `timeMs`. */
export function totpStep(timeMs: number, step = TOTP_STEP_SECONDS): number {
  if (!Number.isFinite(timeMs) || timeMs < 0) throw new RangeError('time must be a finite, non-negative number of ms');
  if (!Number.isInteger(step) || step < 1) throw new RangeError('step must be a positive whole number of seconds');
  return Math.floor(timeMs / 1000 / step);
}

/** The code of `secret` (base32) at `timeMs`. `digits` other than 6 exist for the RFC vectors. */
export function totpCode(secret: string, timeMs: number, step = TOTP_STEP_SECONDS, digits = TOTP_DIGITS): string {
  return hotp(base32Decode(secret), totpStep(timeMs, step), digits);
}

/**
 * Checks a code typed by the user against the steps now-1, now and now+1. A step at or before
 * `lastUsedStep` is refused as `reused`, so each code logs in once; persist the returned `step`.
 * Throws only when `secret` itself is not base32 (a server-side fault, not the user's).
 */
export function verifyTotp(secret: string, code: string, timeMs: number, lastUsedStep: number | null, step = TOTP_STEP_SECONDS): TotpResult {
  const key = base32Decode(secret);
  const typed = typeof code === 'string' ? code.replace(/\s+/g, '') : '';
  if (!/^\d{6}$/.test(typed)) return { ok: false, reason: 'invalid' };
  const now = totpStep(timeMs, step);
  // Every candidate is computed and compared, so the time taken does not say which one matched.
  let matched: number | null = null;
  for (let candidate = now - DRIFT_STEPS; candidate <= now + DRIFT_STEPS; candidate++) {
    if (candidate < 0) continue;
    const equal = timingSafeEqual(Buffer.from(hotp(key, candidate, TOTP_DIGITS)), Buffer.from(typed));
    // The latest matching step wins: two steps share a code once in a million, and the later one
    // is the one that must be burnt.
    if (equal) matched = candidate;
  }
  if (matched === null) return { ok: false, reason: 'invalid' };
  if (lastUsedStep !== null && matched <= lastUsedStep) return { ok: false, reason: 'reused' };
  return { ok: true, step: matched };
}

export interface TotpUriOptions {
  secret: string;
  /** The user's account name, shown in the authenticator app. */
  account: string;
  issuer?: string;
}

/** `otpauth://totp/Issuer:account?secret=…&issuer=…` in the Key URI Format authenticators read. */
export function totpUri({ secret, account, issuer = 'NixFleet' }: TotpUriOptions): string {
  // The label is `issuer:account`; a colon inside either would split it in the wrong place.
  if (issuer.includes(':') || account.includes(':')) throw new Error('TOTP issuer and account must not contain ":"');
  base32Decode(secret); // throws on a secret that is not base32
  const normalizedSecret = normalizeBase32(secret);
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  // encodeURIComponent rather than URLSearchParams: some apps show a `+` for a space literally.
  const query = [
    `secret=${normalizedSecret}`,
    `issuer=${encodeURIComponent(issuer)}`,
    'algorithm=SHA1',
    `digits=${TOTP_DIGITS}`,
    `period=${TOTP_STEP_SECONDS}`,
  ].join('&');
  return `otpauth://totp/${label}?${query}`;
}

/** RFC 4226 HOTP: HMAC-SHA-1 of the 8-byte big-endian counter, dynamically truncated. */
function hotp(key: Buffer, counter: number, digits: number): string {
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new RangeError('digits must be 6, 7 or 8');
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError('counter must be a non-negative safe integer');
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff; // drop the sign bit, RFC 4226 §5.3
  return String(binary % 10 ** digits).padStart(digits, '0');
}
