// TOTP: the RFC 6238 and RFC 4226 test vectors, base32 (RFC 4648 vectors and a round-trip
// property), the ±1 step drift window, refusal of reused codes and of malformed input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, generateTotpSecret, totpCode, totpStep, totpUri, verifyTotp } from './totp.js';

// RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
const RFC_SECRET = base32Encode(Buffer.from('12345678901234567890', 'ascii'));

describe('totpCode', () => {
  it.each([
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ])('matches RFC 6238 Appendix B at T=%i s (8 and 6 digits)', (seconds, expected) => {
    expect(totpCode(RFC_SECRET, seconds * 1000, 30, 8)).toBe(expected);
    expect(totpCode(RFC_SECRET, seconds * 1000)).toBe(expected.slice(2));
  });

  it('matches the RFC 4226 Appendix D HOTP values for counters 0–9', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((code, counter) => expect(totpCode(RFC_SECRET, counter * 30_000)).toBe(code));
  });

  it('refuses digit counts other than 6–8', () => {
    expect(() => totpCode(RFC_SECRET, 0, 30, 5)).toThrow(RangeError);
    expect(() => totpCode(RFC_SECRET, 0, 30, 9)).toThrow(RangeError);
  });

  it('keeps the same code through one 30 s step and changes at its boundary', () => {
    const start = 1_700_000_010_000 - (1_700_000_010_000 % 30_000);
    expect(totpCode(RFC_SECRET, start)).toBe(totpCode(RFC_SECRET, start + 29_999));
    expect(totpStep(start + 30_000)).toBe(totpStep(start) + 1);
  });
});

describe('base32', () => {
  it.each([
    ['', ''],
    ['f', 'MY'],
    ['fo', 'MZXQ'],
    ['foo', 'MZXW6'],
    ['foob', 'MZXW6YQ'],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI'],
  ])('encodes %j as %j (RFC 4648 §10, unpadded)', (text, encoded) => {
    expect(base32Encode(Buffer.from(text))).toBe(encoded);
    expect(base32Decode(encoded).toString()).toBe(text);
  });

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const encoded = base32Encode(bytes);
        expect(encoded).toMatch(/^[A-Z2-7]*$/);
        expect(base32Decode(encoded)).toEqual(Buffer.from(bytes));
        expect(base32Decode(encoded.toLowerCase())).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('decodes case-insensitively, ignoring spaces and padding', () => {
    expect(base32Decode('mzxw 6ytb oi').toString()).toBe('foobar');
    expect(base32Decode('MZXW6YQ=').toString()).toBe('foob');
  });

  it.each(['MZXW1', 'MZ-XW', 'MZXW6YTB0I', 'ß', 'MZ=XW', 'M', 'MZX'])('throws on %j', (text) => {
    expect(() => base32Decode(text)).toThrow(/invalid base32/);
  });
});

describe('generateTotpSecret', () => {
  it('is 32 base32 characters (20 bytes), different each time', () => {
    const a = generateTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(a)).toHaveLength(20);
    expect(generateTotpSecret()).not.toBe(a);
  });
});

describe('verifyTotp', () => {
  const secret = generateTotpSecret();
  const now = 1_750_000_000_000;
  const step = totpStep(now);
  const codeAt = (offsetSteps: number): string => totpCode(secret, now + offsetSteps * 30_000);

  it('accepts the current code and returns its step', () => {
    expect(verifyTotp(secret, codeAt(0), now, null)).toEqual({ ok: true, step });
  });

  it('accepts one step of drift either way', () => {
    expect(verifyTotp(secret, codeAt(-1), now, null)).toEqual({ ok: true, step: step - 1 });
    expect(verifyTotp(secret, codeAt(1), now, null)).toEqual({ ok: true, step: step + 1 });
  });

  it('refuses two steps of drift either way', () => {
    for (const offset of [-2, 2]) {
      const code = codeAt(offset);
      // Skip the one-in-a-million case where the far code equals a near one.
      if ([-1, 0, 1].some((near) => codeAt(near) === code)) continue;
      expect(verifyTotp(secret, code, now, null)).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('refuses a code already used, and an older one after a newer', () => {
    const first = verifyTotp(secret, codeAt(0), now, null);
    expect(first.ok).toBe(true);
    const used = first.ok ? first.step : NaN;
    expect(verifyTotp(secret, codeAt(0), now, used)).toEqual({ ok: false, reason: 'reused' });
    expect(verifyTotp(secret, codeAt(-1), now, used)).toEqual({ ok: false, reason: 'reused' });
    expect(verifyTotp(secret, codeAt(1), now, used)).toEqual({ ok: true, step: step + 1 });
  });

  it('accepts the next code once the step has moved on', () => {
    const later = now + 30_000;
    expect(verifyTotp(secret, totpCode(secret, later), later, step)).toEqual({ ok: true, step: step + 1 });
  });

  it('trims spaces in the typed code', () => {
    const code = codeAt(0);
    expect(verifyTotp(secret, ` ${code.slice(0, 3)} ${code.slice(3)} `, now, null)).toEqual({ ok: true, step });
  });

  it.each(['', '12345', '1234567', 'abcdef', '12345a', '１２３４５６', '-12345', '12.345', '0x1234'])('refuses %j as invalid', (code) => {
    expect(verifyTotp(secret, code, now, null)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses a wrong code of the right shape', () => {
    const wrong = String((Number(codeAt(0)) + 1) % 1_000_000).padStart(6, '0');
    if ([-1, 0, 1].some((near) => codeAt(near) === wrong)) return;
    expect(verifyTotp(secret, wrong, now, null)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('throws on a time that is not a finite, non-negative number (a caller bug)', () => {
    for (const time of [NaN, Infinity, -1]) expect(() => verifyTotp(secret, codeAt(0), time, null)).toThrow(RangeError);
  });

  it('refuses a non-string code without throwing', () => {
    expect(verifyTotp(secret, undefined as unknown as string, now, null)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('never accepts a code computed for another secret (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.integer({ min: 30_000, max: 4_000_000_000_000 }), (bytes, time) => {
        const other = base32Encode(bytes);
        const code = totpCode(other, time);
        const expected = [-1, 0, 1].some((d) => totpCode(secret, time + d * 30_000) === code);
        expect(verifyTotp(secret, code, time, null).ok).toBe(expected);
      }),
    );
  });
});

describe('totpUri', () => {
  it('builds an otpauth URI with the label and parameters encoded', () => {
    const uri = totpUri({ secret: 'jbsw y3dp ehpk 3pxp', account: 'ada lovelace@example.org' });
    expect(uri).toBe(
      'otpauth://totp/NixFleet:ada%20lovelace%40example.org?secret=JBSWY3DPEHPK3PXP&issuer=NixFleet&algorithm=SHA1&digits=6&period=30',
    );
    const parsed = new URL(uri);
    expect(parsed.protocol).toBe('otpauth:');
    expect(parsed.searchParams.get('secret')).toBe('JBSWY3DPEHPK3PXP');
  });

  it('encodes an issuer with special characters', () => {
    const uri = totpUri({ secret: 'JBSWY3DPEHPK3PXP', account: 'root', issuer: 'Fleet & Co/Prod' });
    expect(uri).toContain('otpauth://totp/Fleet%20%26%20Co%2FProd:root?');
    expect(new URL(uri).searchParams.get('issuer')).toBe('Fleet & Co/Prod');
  });

  it('refuses a colon in the account or issuer, and a secret that is not base32', () => {
    expect(() => totpUri({ secret: 'JBSWY3DPEHPK3PXP', account: 'a:b' })).toThrow(/":"/);
    expect(() => totpUri({ secret: 'JBSWY3DPEHPK3PXP', account: 'a', issuer: 'x:y' })).toThrow(/":"/);
    expect(() => totpUri({ secret: 'not base32!', account: 'a' })).toThrow(/invalid base32/);
  });
});
