// Descriptor exhaustion (issue 12, hole 2): one client without credentials opened 21,000 idle or
// half-sent requests and the server ran out of file descriptors. Each test performs the attack
// against a real server process from 127.0.0.1 and checks, from 127.0.0.2 (another address on
// the loopback), that the server still answers, and in /proc that its descriptors stay bounded.
import { readdirSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { TEST_ADMIN_PASSWORD, tempDir } from './support/test-server.js';
import { until } from './support/until.js';

const ATTACKER = '127.0.0.1';
const VICTIM = '127.0.0.2';

const defer = cleanupAfterEach();

async function serverProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const dataDir = tempDir();
  const server = await spawnServer({ NIXFLEET_DATA_DIR: dataDir, ...env });
  defer(() => rmSync(dataDir, { recursive: true, force: true }));
  defer(() => server.kill());
  return server;
}

function descriptors(server: ServerProcess): number {
  return readdirSync(`/proc/${server.child.pid}/fd`).length;
}

interface Attack {
  /** The sockets the server has not closed. */
  sockets: Set<Socket>;
  /** What refused connections were told before the server closed them. */
  refusals: string[];
  release(): void;
}

/**
 * Opens `count` connections from `from`: idle ones send nothing, slow ones half a request. The
 * client never closes a socket itself (half-open allowed), as an attacker would not.
 */
async function flood(url: string, count: number, from = ATTACKER): Promise<Attack> {
  const { hostname, port } = new URL(url);
  const attack: Attack = { sockets: new Set(), refusals: [], release: () => attack.sockets.forEach((s) => s.destroy()) };
  defer(() => attack.release());
  for (let batch = 0; batch < count; batch += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, count - batch) }, (_, i) => new Promise<void>((resolve) => {
        const socket = connect({ host: hostname, port: Number(port), localAddress: from, allowHalfOpen: true });
        let answer = '';
        socket.on('connect', () => {
          attack.sockets.add(socket);
          if ((batch + i) % 2 === 1) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: '); // never finished
          resolve();
        });
        socket.on('data', (d) => (answer += d));
        // 'end': the server closed its side (this client, half-open, would keep its own).
        const closedByServer = () => {
          if (!attack.sockets.delete(socket)) return;
          if (answer) attack.refusals.push(answer);
          resolve();
        };
        socket.on('end', closedByServer);
        socket.on('close', () => {
          closedByServer();
          resolve();
        });
        socket.on('error', () => resolve());
      })),
    );
  }
  return attack;
}

/** A plain HTTP request from another loopback address. */
function fromVictim(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined>; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(url + path, { method, localAddress: VICTIM, headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text.startsWith('{') ? JSON.parse(text) : text, headers: res.headers, ms: Date.now() - started }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path} from ${VICTIM} timed out`)));
    req.end(payload);
  });
}

describe('one address cannot take every descriptor', () => {
  it('caps one address at NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS (256 by default) while another logs in and streams', async () => {
    const server = await serverProcess();
    const baseline = descriptors(server);
    const attack = await flood(server.url, 3000);
    await until('the server to shed the connections over the cap', () => attack.sockets.size <= 256);
    expect(descriptors(server) - baseline).toBeLessThanOrEqual(256 + 8);

    const health = await fromVictim(server.url, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.ms).toBeLessThan(500);
    const login = await fromVictim(server.url, 'POST', '/api/login', { username: 'admin', password: TEST_ADMIN_PASSWORD });
    expect(login.status).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const stream = await SyncRecorder.connect(server.wsUrl, { headers: { cookie, origin: server.url }, localAddress: VICTIM });
    defer(() => stream.close());
    await stream.waitForVersion(0);
    const added = await fromVictim(server.url, 'POST', '/api/hosts', { hostname: 'web-1' }, server.authHeaders);
    expect(added.status).toBe(201);
    await stream.waitForVersion(added.body.version);
    expect(stream.violations).toEqual([]);

    // The attacker's own connections beyond the cap were told why, then closed.
    expect(attack.refusals.length).toBeGreaterThan(0);
    expect(attack.refusals[0]).toMatch(/^HTTP\/1\.1 503 [^]*too_many_connections/);
    expect(descriptors(server) - baseline).toBeLessThanOrEqual(256 + 16);
  });

  it('holds the global cap (NIXFLEET_MAX_CONNECTIONS) whatever the per-address one, and serves again once the flood ends', async () => {
    const server = await serverProcess({ NIXFLEET_MAX_CONNECTIONS: '300', NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS: '5000' });
    const baseline = descriptors(server);
    const attack = await flood(server.url, 1000);
    await until('the server to shed the connections over the global cap', () => attack.sockets.size <= 300);
    expect(descriptors(server) - baseline).toBeLessThanOrEqual(300 + 8);
    attack.release();
    await until('/healthz after the flood', async () => (await fromVictim(server.url, 'GET', '/healthz').catch(() => ({ status: 0 }))).status === 200, 5000);
  });

  it('destroys idle and half-sent connections once the header timeout passes, without waiting for the client to close', async () => {
    const server = await serverProcess({ NIXFLEET_HEADERS_TIMEOUT: '1s' });
    const baseline = descriptors(server);
    const attack = await flood(server.url, 200);
    expect(attack.sockets.size).toBe(200);
    // Neither kind ever completes a request: both are answered 408 and closed by the server,
    // while these clients would have held them half-open forever.
    await until('the connections to be answered and closed', () => attack.sockets.size === 0, 5000);
    expect(attack.refusals).toHaveLength(200);
    expect(attack.refusals.every((answer) => /^HTTP\/1\.1 408 /.test(answer))).toBe(true);
    await until('the server to let go of their descriptors', () => descriptors(server) <= baseline + 2, 2000);
  });

  it('exempts trusted proxies from the per-address cap: everyone behind them shares their address', async () => {
    const server = await serverProcess({ NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS: '64', NIXFLEET_TRUSTED_PROXIES: ATTACKER });
    const attack = await flood(server.url, 200);
    await new Promise((resolve) => setTimeout(resolve, 300)); // none of them is shed meanwhile
    expect(attack.sockets.size).toBe(200);
    const other = await flood(server.url, 100, VICTIM);
    await until('the untrusted address to be capped', () => other.sockets.size <= 64, 5000);
  });
});

describe('WebSockets count too', () => {
  it('refuses an address the sockets over its cap, upgraded or not', async () => {
    const server = await serverProcess({ NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS: '64' });
    const sockets: WebSocket[] = [];
    defer(() => sockets.forEach((ws) => ws.terminate()));
    const results = await Promise.all(
      Array.from({ length: 80 }, () => new Promise<string>((resolve) => {
        const ws = new WebSocket(server.wsUrl, { headers: server.authHeaders, localAddress: ATTACKER });
        sockets.push(ws);
        ws.once('open', () => resolve('open'));
        ws.once('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
        ws.once('error', () => resolve('error'));
      })),
    );
    expect(results.filter((r) => r === 'open')).toHaveLength(64);
    expect(results.filter((r) => r !== 'open').every((r) => r === '503' || r === 'error')).toBe(true);
    const health = await fromVictim(server.url, 'GET', '/healthz');
    expect(health.status).toBe(200);
  });
});
