// Access control and hardening, one attack per control: each test performs the attack over
// real sockets and asserts it fails (and that the legitimate path still works).
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { totpCode } from '../src/server/auth/totp.js';
import { createLogger } from '../src/server/logger.js';
import { withAgents } from './support/go-agent.js';
import { api, logInSession, request, type Session } from './support/http.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, tempDir, TEST_ADMIN_PASSWORD, type TestServer } from './support/test-server.js';

const defer = cleanupAfterEach();

async function server(overrides: Parameters<typeof startTestServer>[0] = {}, options: Parameters<typeof startTestServer>[1] = {}): Promise<TestServer> {
  const s = await startTestServer(overrides, options);
  defer(() => s.dispose());
  return s;
}


async function login(s: TestServer, username: string, password: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return request(s.url, 'POST', '/api/login', { username, password, ...extra }, headers);
}

function session(s: TestServer, username = 'admin', password = TEST_ADMIN_PASSWORD): Promise<Session> {
  return logInSession(s.url, username, password);
}

async function addUser(s: TestServer, name: string, role: 'viewer' | 'operator' | 'admin'): Promise<Session> {
  const password = `${name}-password-long-enough`;
  expect((await api(s.url, s.token).post('/api/users', { name, role, password })).status).toBe(201);
  return session(s, name, password);
}

function upgrade(url: string, headers: Record<string, string>): Promise<{ status: number } | { open: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ open: ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.once('error', () => resolve({ status: -1 }));
  });
}

describe('authentication', () => {
  it('refuses the API and the socket without credentials; only login, its assets and /healthz are public', async () => {
    const s = await server();
    for (const [method, path] of [
      ['GET', '/api/state'], ['POST', '/api/hosts'], ['PATCH', '/api/hosts/x'], ['DELETE', '/api/hosts/x'], ['POST', '/api/commands'],
      ['GET', '/api/commands/x/output'], ['POST', '/api/events'], ['GET', '/api/tokens'], ['GET', '/api/users'], ['GET', '/api/me'],
      ['POST', '/api/logout'], ['GET', '/assets/app.js'],
    ] as const) {
      const res = await request(s.url, method, path, method === 'GET' ? undefined : {});
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 401 });
    }
    expect((await request(s.url, 'GET', '/healthz')).status).toBe(200);
    const root = await fetch(s.url + '/', { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/login');
    expect(await upgrade(s.wsUrl, {})).toEqual({ status: 401 });
    expect(await upgrade(s.wsUrl, { authorization: 'Bearer nft_000000000000_' + 'x'.repeat(43) })).toEqual({ status: 401 });
    expect(s.manager.version).toBe(0);
  });

  it('logs in with a fresh HttpOnly SameSite session cookie and answers the CSRF token', async () => {
    const s = await server();
    const res = await login(s, 'ADMIN', TEST_ADMIN_PASSWORD);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user: { name: 'admin', role: 'admin' }, csrf_token: expect.stringMatching(/^[\w-]{43}$/) });
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^nixfleet_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=86400$/);
    expect((await login(s, 'admin', 'wrong password!!')).status).toBe(401);
    expect((await login(s, 'nobody', 'wrong password!!')).body.error).toBe('invalid_credentials');
  });

  it('never promotes a session id planted before login (fixation)', async () => {
    const s = await server();
    const planted = await session(s);
    const res = await login(s, 'admin', TEST_ADMIN_PASSWORD, {}, { cookie: planted.cookie });
    const fresh = res.headers.get('set-cookie')!.split(';')[0]!;
    expect(fresh).not.toBe(planted.cookie);
    // The id the attacker knew is dead.
    expect((await request(s.url, 'GET', '/api/me', undefined, { cookie: planted.cookie })).status).toBe(401);
    expect((await request(s.url, 'GET', '/api/me', undefined, { cookie: fresh })).status).toBe(200);
  });

  it('rate-limits password guessing per account, with Retry-After', async () => {
    const s = await server();
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await login(s, 'admin', `guess number ${i}!`)).status);
    expect(codes.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    const limited = await login(s, 'admin', TEST_ADMIN_PASSWORD);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('ignores a spoofed X-Forwarded-For from an untrusted peer, honours it from a trusted proxy', async () => {
    const direct = await server();
    // Cycling forged addresses does not reset the per-address budget.
    let last = 0;
    for (let i = 0; i < 25; i++) last = (await login(direct, `user${i}`, 'wrong password!!', {}, { 'x-forwarded-for': `203.0.113.${i}` })).status;
    expect(last).toBe(429);

    const proxied = await server({ trustedProxies: '127.0.0.1' });
    for (let i = 0; i < 25; i++) last = (await login(proxied, `user${i}`, 'wrong password!!', {}, { 'x-forwarded-for': `203.0.113.${i}` })).status;
    expect(last).toBe(401); // 25 distinct clients behind the proxy, each with its own budget
  });

  it('refuses a reused TOTP code', async () => {
    let now = Date.UTC(2026, 10, 26, 12, 0, 0);
    const s = await server({}, { now: () => now });
    const { secret } = (await api(s.url, s.token).post('/api/users/admin/totp')).body;
    expect((await login(s, 'admin', TEST_ADMIN_PASSWORD)).body.error).toBe('totp_required');
    const code = totpCode(secret, now);
    expect((await login(s, 'admin', TEST_ADMIN_PASSWORD, { totp: code })).status).toBe(200);
    const replay = await login(s, 'admin', TEST_ADMIN_PASSWORD, { totp: code });
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('totp_reused');
    now += 30_000;
    // Two logins racing with one fresh code: exactly one gets in.
    const fresh = totpCode(secret, now);
    const raced = await Promise.all([login(s, 'admin', TEST_ADMIN_PASSWORD, { totp: fresh }), login(s, 'admin', TEST_ADMIN_PASSWORD, { totp: fresh })]);
    expect(raced.map((r) => r.status).sort()).toEqual([200, 401]);
  });
});

describe('authorization', () => {
  it('lets a viewer watch and nothing else', async () => {
    const s = await server();
    const viewer = await addUser(s, 'vera', 'viewer');
    expect((await request(s.url, 'GET', '/api/state', undefined, viewer.headers)).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/api/hosts', { hostname: 'x' }],
      ['POST', '/api/commands', { host_id: 'x', op: 'switch' }],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['x'], stages: ['pull'] }],
      ['DELETE', '/api/hosts/x', undefined],
      ['POST', '/api/tokens', { name: 't', role: 'admin' }],
      ['POST', '/api/users', { name: 'mallory', role: 'admin', password: 'long enough password' }],
    ] as const) {
      const res = await request(s.url, method, path, body, viewer.headers);
      expect({ path, status: res.status }).toEqual({ path, status: 403 });
    }
    const ws = await SyncRecorder.connect(s.wsUrl, { headers: { cookie: viewer.cookie, origin: s.url } });
    await ws.waitForVersion(0);
    ws.close();
    expect(s.manager.version).toBe(0);
  });

  it('lets an operator act but not administer', async () => {
    const s = await server();
    const op = await addUser(s, 'otto', 'operator');
    expect((await request(s.url, 'POST', '/api/hosts', { hostname: 'web-1' }, op.headers)).status).toBe(201);
    await withAgents(s, ['web-1'], defer);
    expect((await request(s.url, 'POST', '/api/commands', { host_id: 'web-1', op: 'switch' }, op.headers)).status).toBe(201);
    expect((await request(s.url, 'GET', '/api/tokens', undefined, op.headers)).status).toBe(403);
  });

  it('lets an agent token report for its own host only', async () => {
    const s = await server();
    const admin = api(s.url, s.token);
    await admin.addHost('web-1');
    await admin.addHost('web-2');
    const created = await admin.post('/api/tokens', { name: 'agent web-1', role: 'agent', host_id: 'web-1' });
    expect(created.status).toBe(201);
    const agent = api(s.url, created.body.token);
    expect((await agent.patch('/api/hosts/web-1', { status: 'online' })).status).toBe(200);
    expect((await agent.patch('/api/hosts/web-2', { status: 'offline' })).status).toBe(403);
    expect((await agent.post('/api/events', { level: 'info', category: 'agent', message: 'hi', host_id: 'web-2' })).status).toBe(403);
    expect((await agent.post('/api/events', { level: 'info', category: 'agent', message: 'hi' })).status).toBe(403);
    const mine = await agent.post('/api/events', { level: 'info', category: 'agent', message: 'hi', host_id: 'web-1', actor: 'root' });
    expect(mine.status).toBe(201);
    expect(mine.body.event.actor).toBe('token:agent web-1');
    await withAgents(s, ['web-2'], defer);
    const other = (await admin.post('/api/commands', { host_id: 'web-2', op: 'switch' })).body.command.id;
    expect((await agent.post(`/api/commands/${other}/output`, { output: 'forged' })).status).toBe(403);
    expect((await agent.post('/api/commands', { host_id: 'web-1', op: 'reboot' })).status).toBe(403);
    expect((await agent.get('/api/state')).status).toBe(403);
  });

  it('creates tokens shown once, stored hashed, and revocation closes their sockets', async () => {
    const s = await server();
    const admin = api(s.url, s.token);
    const created = await admin.post('/api/tokens', { name: 'ci', role: 'viewer' });
    expect(created.body).toEqual({ id: expect.stringMatching(/^[a-z0-9]{12}$/), token: expect.stringMatching(/^nft_[a-z0-9]{12}_[\w-]{43}$/) });
    const listed = (await admin.get('/api/tokens')).body.tokens;
    // The secret is base64url, which may itself contain '_': take everything after the id.
    const secret = /^nft_[a-z0-9]{12}_([\w-]{43})$/.exec(created.body.token)![1]!;
    expect(JSON.stringify(listed)).not.toContain(secret);
    const ws = await SyncRecorder.connect(s.wsUrl, { headers: { authorization: `Bearer ${created.body.token}` } });
    await ws.waitForVersion(0);
    const revokedAt = Date.now();
    expect((await admin.delete(`/api/tokens/${created.body.id}`)).status).toBe(200);
    await ws.waitForClose(1000);
    expect(ws.closeCode).toBe(4401);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    expect((await api(s.url, created.body.token).get('/api/state')).status).toBe(401);
  });
});

describe('CSRF and cross-site sockets', () => {
  it('refuses cookie-authenticated mutations without the CSRF token; bearer requests need none', async () => {
    const s = await server();
    const admin = await session(s);
    const noToken = await request(s.url, 'POST', '/api/hosts', { hostname: 'x' }, { cookie: admin.cookie });
    expect(noToken.status).toBe(403);
    expect(noToken.body.error).toBe('csrf');
    const wrong = await request(s.url, 'POST', '/api/hosts', { hostname: 'x' }, { cookie: admin.cookie, 'x-csrf-token': 'x'.repeat(43) });
    expect(wrong.status).toBe(403);
    const foreign = await request(s.url, 'POST', '/api/hosts', { hostname: 'x' }, { ...admin.headers, origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect((await request(s.url, 'POST', '/api/hosts', { hostname: 'x' }, admin.headers)).status).toBe(201);
    expect((await api(s.url, s.token).post('/api/hosts', { hostname: 'y' })).status).toBe(201);
  });

  it('refuses a socket opened with the user\'s cookie from a foreign origin', async () => {
    const s = await server({ allowedOrigins: ['https://fleet.example.org'] });
    const admin = await session(s);
    expect(await upgrade(s.wsUrl, { cookie: admin.cookie, origin: 'https://evil.example' })).toEqual({ status: 403 });
    expect(await upgrade(s.wsUrl, { cookie: admin.cookie })).toEqual({ status: 403 });
    for (const origin of [s.url, 'https://fleet.example.org']) {
      const ok = await upgrade(s.wsUrl, { cookie: admin.cookie, origin });
      expect('open' in ok).toBe(true);
      if ('open' in ok) ok.open.close();
    }
  });
});

describe('sockets end with their session', () => {
  it('closes the socket within a second of logout', async () => {
    const s = await server();
    const admin = await session(s);
    const ws = await SyncRecorder.connect(s.wsUrl, { headers: { cookie: admin.cookie, origin: s.url } });
    await ws.waitForVersion(0);
    const at = Date.now();
    expect((await request(s.url, 'POST', '/api/logout', {}, admin.headers)).status).toBe(200);
    await ws.waitForClose(1000);
    expect(ws.closeCode).toBe(4401);
    expect(Date.now() - at).toBeLessThan(1000);
    expect((await request(s.url, 'GET', '/api/me', undefined, admin.headers)).status).toBe(401);
  });

  it('closes the socket within a second of the session expiring', async () => {
    let now = Date.now();
    const s = await server({ sessionDurationMs: 60_000 }, { now: () => now });
    const admin = await session(s);
    const ws = await SyncRecorder.connect(s.wsUrl, { headers: { cookie: admin.cookie, origin: s.url } });
    await ws.waitForVersion(0);
    now += 61_000;
    await ws.waitForClose(1500);
    expect(ws.closeCode).toBe(4401);
  });
});

describe('input hardening', () => {
  it('keeps prototypes clean whatever keys host_updated fields carry', async () => {
    const s = await server();
    const admin = api(s.url, s.token);
    await admin.addHost('h1');
    for (const body of ['{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '{"compartments":{"__proto__":{"polluted":1}}}', '{"metrics":{"cpu":1,"ram":1,"swap":1,"load":1,"__proto__":{"polluted":1}}}']) {
      const res = await request(s.url, 'PATCH', '/api/hosts/h1', body, s.authHeaders);
      expect(res.status).toBe(400);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(s.manager.version).toBe(1);
  });

  it('sends the security headers on every page and response', async () => {
    const s = await server();
    for (const path of ['/login', '/healthz', '/api/state', '/nope']) {
      const res = await fetch(s.url + path, { headers: s.authHeaders });
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('content-security-policy')).toContain("worker-src 'self'");
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('strict-transport-security')).toBeNull();
    }
  });

  it('serves HTTPS with HSTS and a __Host- Secure cookie when given a certificate', async () => {
    const dir = tempDir();
    defer(() => rmSync(dir, { recursive: true, force: true }));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const s = await server({ tlsCertFile: cert, tlsKeyFile: key });
    expect(s.url).toMatch(/^https:/);
    const body = await new Promise<{ headers: Record<string, string | string[] | undefined>; status: number }>((resolve, reject) => {
      const { request: httpsRequest } = require('node:https') as typeof import('node:https');
      const req = httpsRequest(`${s.url}/api/login`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve({ headers: res.headers, status: res.statusCode ?? 0 });
      });
      req.on('error', reject);
      req.end(JSON.stringify({ username: 'admin', password: TEST_ADMIN_PASSWORD }));
    });
    expect(body.status).toBe(200);
    expect(body.headers['strict-transport-security']).toContain('max-age=');
    expect(String(body.headers['set-cookie'])).toMatch(/^__Host-nixfleet_session=[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
  });
});

describe('log flooding', () => {
  // 66 scrypt hashes take seconds on a loaded machine.
  it('does not let unauthenticated requests fill the error log: aborted bodies and a busy password queue', { timeout: 90_000 }, async () => {
    const lines: Array<{ level: string; msg: string }> = [];
    const s = await server({ trustedProxies: '127.0.0.1', logLevel: 'debug' }, { logger: createLogger('debug', (line) => lines.push(JSON.parse(line))) });
    const { port } = new URL(s.url);
    // 200 uploads that stop half-way.
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write('POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"username":');
        setTimeout(() => socket.destroy(), 20);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    })));
    // 90 logins at once from 90 addresses: more than the password queue holds (2 + 64: kdf_busy).
    const answers = await Promise.all(Array.from({ length: 90 }, (_, i) => login(s, `user${i}`, 'wrong password!!', {}, { 'x-forwarded-for': `198.51.100.${i}` })));
    expect(answers.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the aborts the server notices late are logged too
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    const perMessage = new Map<string, number>();
    for (const line of lines) if (line.level === 'warn') perMessage.set(line.msg, (perMessage.get(line.msg) ?? 0) + 1);
    for (const [msg, count] of perMessage) expect({ msg, count }).toEqual({ msg, count: Math.min(count, 10) });
  });
});
