// The smaller holes of issue 12, hole 5, each performed over real sockets: a second factor changed
// with a session alone, an access change that leaves no admin, a `__proto__` key stored as `{}`,
// a WebSocket origin check that believed the client's Host header.
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { totpCode } from '../src/server/auth/totp.js';
import { ownOrigins } from '../src/server/http/own-origins.js';
import { api, logInSession, request, type Session } from './support/http.js';
import { startTestServer, TEST_ADMIN_PASSWORD, type TestServer } from './support/test-server.js';

const defer = cleanupAfterEach();

async function server(overrides: Parameters<typeof startTestServer>[0] = {}, options: Parameters<typeof startTestServer>[1] = {}): Promise<TestServer> {
  const s = await startTestServer(overrides, options);
  defer(() => s.dispose());
  return s;
}

function session(s: TestServer, username: string, password: string): Promise<Session> {
  return logInSession(s.url, username, password);
}

const ALICE_PASSWORD = 'alice has a long password';

async function withAlice(s: TestServer, role: 'operator' | 'admin' = 'operator'): Promise<Session> {
  expect((await api(s.url, s.token).post('/api/users', { name: 'alice', role, password: ALICE_PASSWORD })).status).toBe(201);
  return session(s, 'alice', ALICE_PASSWORD);
}

describe('changing a second factor needs the password', () => {
  it('refuses to enable or re-key TOTP with a session alone or a wrong password, and does it with the password', async () => {
    const s = await server();
    const alice = await withAlice(s);
    const bare = await request(s.url, 'POST', '/api/users/alice/totp', {}, alice.headers);
    expect(bare.status).toBe(400);
    expect(bare.body.message).toMatch(/password/);
    const wrong = await request(s.url, 'POST', '/api/users/alice/totp', { password: 'not alice password' }, alice.headers);
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toBe('reauthentication_failed');
    expect((await api(s.url, s.token).get('/api/users')).body.users.find((u: { name: string }) => u.name === 'alice').totp).toBe(false);
    const enabled = await request(s.url, 'POST', '/api/users/alice/totp', { password: ALICE_PASSWORD }, alice.headers);
    expect(enabled.status).toBe(200);
    expect(enabled.body.secret).toMatch(/^[A-Z2-7]+$/);
    // Re-keying is the same request: it needs the password again.
    expect((await request(s.url, 'POST', '/api/users/alice/totp', {}, alice.headers)).status).toBe(400);
  });

  it('refuses to disable TOTP without the password and a current code', async () => {
    const now = Date.UTC(2026, 11, 1, 12, 0, 0);
    const s = await server({}, { now: () => now });
    const alice = await withAlice(s);
    const { secret } = (await request(s.url, 'POST', '/api/users/alice/totp', { password: ALICE_PASSWORD }, alice.headers)).body;
    const code = totpCode(secret, now);
    expect((await request(s.url, 'DELETE', '/api/users/alice/totp', undefined, alice.headers)).status).toBe(400);
    expect((await request(s.url, 'DELETE', '/api/users/alice/totp', { password: ALICE_PASSWORD }, alice.headers)).status).toBe(400);
    expect((await request(s.url, 'DELETE', '/api/users/alice/totp', { password: 'not alice password', totp: code }, alice.headers)).status).toBe(403);
    expect((await request(s.url, 'DELETE', '/api/users/alice/totp', { password: ALICE_PASSWORD, totp: code === '000000' ? '111111' : '000000' }, alice.headers)).status).toBe(403);
    expect((await request(s.url, 'DELETE', '/api/users/alice/totp', { password: ALICE_PASSWORD, totp: code }, alice.headers)).status).toBe(200);
    expect((await api(s.url, s.token).get('/api/users')).body.users.find((u: { name: string }) => u.name === 'alice').totp).toBe(false);
  });

  it('has an admin changing another user\'s TOTP give the admin\'s own password', async () => {
    const s = await server();
    await withAlice(s);
    const admin = await session(s, 'admin', TEST_ADMIN_PASSWORD);
    expect((await request(s.url, 'POST', '/api/users/alice/totp', { password: ALICE_PASSWORD }, admin.headers)).status).toBe(403);
    expect((await request(s.url, 'POST', '/api/users/alice/totp', { password: TEST_ADMIN_PASSWORD }, admin.headers)).status).toBe(200);
    // Alice lost her phone: the admin turns it off with the admin's password, no code of hers.
    expect((await request(s.url, 'DELETE', '/api/users/alice/totp', { password: TEST_ADMIN_PASSWORD }, admin.headers)).status).toBe(200);
  });

  it('counts wrong passwords here as failed logins: a stolen session cannot guess the password through it', async () => {
    const s = await server();
    const alice = await withAlice(s);
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await request(s.url, 'POST', '/api/users/alice/totp', { password: `guess number ${i}!` }, alice.headers)).status);
    expect(codes.slice(0, 5)).toEqual([403, 403, 403, 403, 403]);
    expect(codes.slice(5)).toEqual([429, 429]);
    expect((await request(s.url, 'POST', '/api/users/alice/totp', { password: ALICE_PASSWORD }, alice.headers)).status).toBe(429);
  });
});

describe('there is always an admin', () => {
  it('refuses to demote or remove the last admin user while no admin token is left', async () => {
    const s = await server();
    const admin = await session(s, 'admin', TEST_ADMIN_PASSWORD);
    // The test's admin token goes: then the user `admin` is the only admin.
    const tokenId = (await api(s.url, s.token).get('/api/tokens')).body.tokens[0].id;
    expect((await request(s.url, 'DELETE', `/api/tokens/${tokenId}`, undefined, admin.headers)).status).toBe(200);
    const demote = await request(s.url, 'PATCH', '/api/users/admin', { role: 'operator' }, admin.headers);
    expect(demote.status).toBe(409);
    expect(demote.body.message).toMatch(/last admin/);
    expect((await request(s.url, 'GET', '/api/users', undefined, admin.headers)).body.users[0].role).toBe('admin');
    // With a second admin, the first may step down.
    expect((await request(s.url, 'POST', '/api/users', { name: 'bob', role: 'admin', password: 'bob has a long password' }, admin.headers)).status).toBe(201);
    expect((await request(s.url, 'PATCH', '/api/users/admin', { role: 'operator' }, admin.headers)).status).toBe(200);
    const bob = await session(s, 'bob', 'bob has a long password');
    expect((await request(s.url, 'DELETE', '/api/users/bob', undefined, bob.headers)).status).toBe(409);
  });

  it('refuses to revoke the last admin token when no admin user is left', async () => {
    const s = await server();
    const token = api(s.url, s.token);
    expect((await token.delete('/api/users/admin')).status).toBe(200); // the token is still an admin
    const id = (await token.get('/api/tokens')).body.tokens[0].id;
    const revoke = await token.delete(`/api/tokens/${id}`);
    expect(revoke.status).toBe(409);
    expect(revoke.body.message).toMatch(/last admin/);
    expect((await token.get('/api/tokens')).status).toBe(200);
  });

  it('lets only one of two admins who demote each other at the same moment succeed', async () => {
    const s = await server();
    const admin = await session(s, 'admin', TEST_ADMIN_PASSWORD);
    await withAlice(s, 'admin');
    const alice = await session(s, 'alice', ALICE_PASSWORD);
    const tokenId = (await api(s.url, s.token).get('/api/tokens')).body.tokens[0].id;
    expect((await request(s.url, 'DELETE', `/api/tokens/${tokenId}`, undefined, admin.headers)).status).toBe(200);
    // Over HTTP: the first to land ends the other's session (401) or the other finds itself the
    // last admin (409); never both demoted.
    const [a, b] = await Promise.all([
      request(s.url, 'PATCH', '/api/users/alice', { role: 'viewer' }, admin.headers),
      request(s.url, 'PATCH', '/api/users/admin', { role: 'viewer' }, alice.headers),
    ]);
    expect([a.status, b.status].filter((status) => status === 200)).toHaveLength(1);
    expect(s.auth.listUsers().filter((u) => u.role === 'admin')).toHaveLength(1);
    // The same race with both checks in flight at once, as two instances' handlers would be.
    await s.auth.setRole(s.auth.listUsers().find((u) => u.role !== 'admin')!.name, 'admin');
    const raced = await Promise.allSettled([s.auth.setRole('alice', 'viewer'), s.auth.setRole('admin', 'viewer')]);
    expect(raced.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(s.auth.listUsers().filter((u) => u.role === 'admin')).toHaveLength(1);
  });
});

describe('__proto__ in event details', () => {
  it.each([
    ['a string', '{"level":"info","category":"x","message":"m","details":{"__proto__":"x"}}'],
    ['an object', '{"level":"info","category":"x","message":"m","details":{"__proto__":{"polluted":1}}}'],
    ['with other keys', '{"level":"info","category":"x","message":"m","details":{"a":1,"__proto__":null}}'],
  ])('is refused with 400, as the docs promise (%s)', async (_what, body) => {
    const s = await server();
    const res = await request(s.url, 'POST', '/api/events', body, s.authHeaders);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/__proto__/);
    expect(s.manager.version).toBe(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('the WebSocket origin check', () => {
  function upgrade(url: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(-1));
    });
  }

  it('compares the Origin with the server\'s configured origins, not with the Host the client sends (DNS rebinding)', async () => {
    const s = await server();
    const admin = await session(s, 'admin', TEST_ADMIN_PASSWORD);
    const { port } = new URL(s.url);
    const rebound = { cookie: admin.cookie, origin: `http://evil.example:${port}`, host: `evil.example:${port}` };
    expect(await upgrade(s.wsUrl, rebound)).toBe(403);
    const mutation = await request(s.url, 'POST', '/api/hosts', { hostname: 'web-1' }, { ...admin.headers, origin: rebound.origin, host: rebound.host });
    expect(mutation.status).toBe(403);
    // The origins a browser really uses for a server listening on 127.0.0.1.
    for (const origin of [s.url, `http://localhost:${port}`]) expect(await upgrade(s.wsUrl, { cookie: admin.cookie, origin })).toBe(101);
  });

  it('accepts the configured NIXFLEET_ALLOWED_ORIGINS behind a proxy, whatever Host the proxy forwards', async () => {
    const s = await server({ allowedOrigins: ['https://fleet.example.org'] });
    const admin = await session(s, 'admin', TEST_ADMIN_PASSWORD);
    expect(await upgrade(s.wsUrl, { cookie: admin.cookie, origin: 'https://fleet.example.org', host: 'fleet.example.org' })).toBe(101);
    expect(await upgrade(s.wsUrl, { cookie: admin.cookie, origin: 'https://fleet.example.org.evil.example', host: 'fleet.example.org.evil.example' })).toBe(403);
  });

  it('knows its own origins from where it listens, and warns when it listens everywhere with none configured', () => {
    const loopback = ownOrigins('127.0.0.1', 8000, false, []);
    expect(loopback.warning).toBeNull();
    expect(loopback.origins).toEqual(expect.arrayContaining(['http://127.0.0.1:8000', 'http://localhost:8000', 'http://[::1]:8000']));
    expect(ownOrigins('fleet.example.org', 443, true, []).origins).toEqual(['https://fleet.example.org']);
    const everywhere = ownOrigins('0.0.0.0', 8000, false, []);
    expect(everywhere.origins).toEqual(expect.arrayContaining(['http://127.0.0.1:8000', 'http://localhost:8000']));
    expect(everywhere.warning).toMatch(/NIXFLEET_ALLOWED_ORIGINS/);
    expect(ownOrigins('::', 8000, false, ['https://fleet.example.org']).warning).toBeNull();
  });
});
