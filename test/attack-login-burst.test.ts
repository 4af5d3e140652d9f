// Password guessing sent in parallel (issue 12, hole 1). The limiter used to read its counter
// before the hash and count the failure after it, so a burst already in the hash queue was
// checked in full and a right password inside the burst logged in. Each test performs the
// attack over real sockets, with no credentials, and counts the passwords the server evaluated.
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { totpCode } from '../src/server/auth/totp.js';
import { api, request, type ApiResponse } from './support/http.js';
import { startTestServer, TEST_ADMIN_PASSWORD, type TestServer } from './support/test-server.js';

const defer = cleanupAfterEach();

async function server(options: Parameters<typeof startTestServer>[1] = {}): Promise<TestServer> {
  const s = await startTestServer({}, options);
  defer(() => s.dispose());
  return s;
}

function login(s: TestServer, username: string, password: string, extra: Record<string, unknown> = {}): Promise<ApiResponse> {
  return request(s.url, 'POST', '/api/login', { username, password, ...extra });
}

/**
 * Sends every guess at once, then, as soon as the first answer to any of them is back (the
 * others are still in flight or in the hash queue), the right password: "in the same burst".
 */
async function burstThenRight(s: TestServer, guesses: Array<[string, string]>): Promise<{ answers: ApiResponse[]; right: ApiResponse }> {
  const inFlight = guesses.map(([user, password]) => login(s, user, password));
  await Promise.race(inFlight);
  const right = await login(s, 'admin', TEST_ADMIN_PASSWORD);
  return { answers: await Promise.all(inFlight), right };
}

function statuses(answers: ApiResponse[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1;
  return counts;
}

describe('parallel password guessing', () => {
  it('evaluates at most 5 of 60 parallel guesses at one account, and refuses the right password sent inside the burst', async () => {
    const s = await server();
    const before = s.auth.stats.passwordChecks;
    const { answers, right } = await burstThenRight(s, Array.from({ length: 60 }, (_, i) => ['admin', `wrong guess ${i}!!`]));
    const counts = statuses(answers);
    expect(counts[401] ?? 0).toBeLessThanOrEqual(5);
    expect((counts[401] ?? 0) + (counts[429] ?? 0)).toBe(60);
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(s.auth.stats.passwordChecks - before).toBeLessThanOrEqual(5);
  });

  it('evaluates at most 20 parallel guesses across 60 accounts from one address', async () => {
    const s = await server();
    const before = s.auth.stats.passwordChecks;
    const { answers, right } = await burstThenRight(s, Array.from({ length: 60 }, (_, i) => [`user${i}`, `wrong guess ${i}!!`]));
    const counts = statuses(answers);
    expect(counts[401] ?? 0).toBeLessThanOrEqual(20);
    expect((counts[401] ?? 0) + (counts[429] ?? 0)).toBe(60);
    expect(right.status).toBe(429);
    expect(s.auth.stats.passwordChecks - before).toBeLessThanOrEqual(20);
  });

  it('still logs in after a few wrong passwords, and a busy password queue costs no attempt', async () => {
    const s = await server();
    for (let i = 0; i < 4; i++) expect((await login(s, 'admin', `wrong guess ${i}!!`)).status).toBe(401);
    expect((await login(s, 'admin', TEST_ADMIN_PASSWORD)).status).toBe(200);
    // Success cleared the account: four more wrong ones are still answered 401, not 429.
    for (let i = 0; i < 4; i++) expect((await login(s, 'admin', `wrong guess ${i}!!`)).status).toBe(401);
  });
});

describe('TOTP does not confirm the password', () => {
  async function withTotp(): Promise<{ s: TestServer; secret: string; now: () => number }> {
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    const s = await server({ now: () => now });
    const enabled = await api(s.url, s.token).post('/api/users/admin/totp', {});
    expect(enabled.status).toBe(200);
    return { s, secret: enabled.body.secret, now: () => now };
  }

  it('answers totp_required to a login without a code whether or not the password is right, without evaluating it', async () => {
    const { s } = await withTotp();
    const before = s.auth.stats.passwordChecks;
    const wrong = await login(s, 'admin', 'certainly not the password');
    const right = await login(s, 'admin', TEST_ADMIN_PASSWORD);
    expect([wrong.status, wrong.body.error, wrong.body.message]).toEqual([right.status, right.body.error, right.body.message]);
    expect(right.body.error).toBe('totp_required');
    expect(s.auth.stats.passwordChecks).toBe(before);
    // Asking is free, so it cannot lock the account either.
    for (let i = 0; i < 10; i++) await login(s, 'admin', `guess ${i} without a code`);
    expect((await login(s, 'admin', 'x'.repeat(20))).body.error).toBe('totp_required');
  });

  it('gives the same answer for a wrong password with a right code as for a right password with a wrong code', async () => {
    const { s, secret, now } = await withTotp();
    const wrongPassword = await login(s, 'admin', 'certainly not the password', { totp: totpCode(secret, now()) });
    const wrongCode = await login(s, 'admin', TEST_ADMIN_PASSWORD, { totp: totpCode(secret, now()) === '000000' ? '111111' : '000000' });
    expect(wrongPassword.status).toBe(401);
    expect([wrongPassword.status, wrongPassword.body]).toEqual([wrongCode.status, wrongCode.body]);
    expect((await login(s, 'admin', TEST_ADMIN_PASSWORD, { totp: totpCode(secret, now()) })).status).toBe(200);
  });
});
