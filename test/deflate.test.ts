// permessage-deflate for snapshots: init and full_state go out deflated (once per version, shared
// by every client) to clients that negotiated the extension; deltas never do. Checked on the wire
// with a library-free client, and end to end with the `ws` client every other test uses.
import { constants, inflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import type { ServerConfig } from '../src/server/config.js';
import { withAgents } from './support/go-agent.js';
import { api } from './support/http.js';
import { RawWebSocket, type RawFrame } from './support/raw-websocket.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const OFFER = 'permessage-deflate; client_max_window_bits';
let server: TestServer;
const sockets: Array<{ close(): void }> = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await server?.dispose();
});

/** Starts a server holding `hosts` hosts; returns their ids. */
async function serverWithHosts(hosts: number, overrides: Partial<ServerConfig> = {}): Promise<string[]> {
  server = await startTestServer(overrides);
  const http = api(server.url, server.token);
  const ids: string[] = [];
  for (let i = 0; i < hosts; i++) ids.push(await http.addHost(`host-${i}.fleet.example.org`));
  return ids;
}

/** A live agent for `host`, so commands can run on it. */
async function agentFor(host: string): Promise<void> {
  const [agent] = await withAgents(server, [host], () => {});
  sockets.push(agent!);
}

async function raw(extensions?: string): Promise<RawWebSocket> {
  const socket = await RawWebSocket.open(server.wsUrl, { ...server.authHeaders, ...(extensions ? { 'Sec-WebSocket-Extensions': extensions } : {}) });
  sockets.push(socket);
  return socket;
}

async function recorder(options: WebSocket.ClientOptions = {}): Promise<SyncRecorder> {
  const r = await SyncRecorder.connect(server.wsUrl, { headers: server.authHeaders, ...options });
  sockets.push(r);
  return r;
}

/** RFC 7692 §7.2.2: the receiver appends the sync-flush tail the sender removed, then inflates. */
function inflate(frame: RawFrame): string {
  return inflateRawSync(Buffer.concat([frame.payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH }).toString();
}

describe('deflated snapshots', () => {
  it('send init deflated to a client that offered permessage-deflate, inflating to the very bytes an uncompressed client gets', async () => {
    await serverWithHosts(20);
    const plain = await raw();
    const deflating = await raw(OFFER);
    expect(plain.headers['sec-websocket-extensions']).toBeUndefined();
    expect(deflating.headers['sec-websocket-extensions']).toMatch(/^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);

    const plainInit = await plain.nextFrame();
    const deflatedInit = await deflating.nextFrame();
    expect(plainInit).toMatchObject({ fin: true, rsv1: false, opcode: 1 });
    expect(deflatedInit).toMatchObject({ fin: true, rsv1: true, opcode: 1 });
    expect(plainInit.payload.length).toBeGreaterThan(4096);
    expect(deflatedInit.payload.length).toBeLessThan(plainInit.payload.length / 4);
    expect(inflate(deflatedInit)).toBe(plainInit.payload.toString());
    expect(JSON.parse(plainInit.payload.toString())).toMatchObject({ type: 'init', version: 20 });
  });

  it('never compress deltas, which follow the deflated init in order', async () => {
    await serverWithHosts(20);
    const deflating = await raw(OFFER);
    expect((await deflating.nextFrame()).rsv1).toBe(true);
    await api(server.url, server.token).addHost('late.fleet.example.org');
    const delta = await deflating.nextFrame();
    expect(delta.rsv1).toBe(false);
    expect(JSON.parse(delta.payload.toString())).toMatchObject({ type: 'delta', version: 21 });
  });

  it('send a client that limited the server window below 32 KiB its init uncompressed', async () => {
    await serverWithHosts(20);
    const limited = await raw('permessage-deflate; server_max_window_bits=10');
    expect(limited.headers['sec-websocket-extensions']).toMatch(/server_max_window_bits=10/);
    const init = await limited.nextFrame();
    expect(init.rsv1).toBe(false);
    expect(JSON.parse(init.payload.toString())).toMatchObject({ type: 'init', version: 20 });
  });

  it('leave a state under 1 KiB uncompressed', async () => {
    await serverWithHosts(0);
    const init = await (await raw(OFFER)).nextFrame();
    expect(init.rsv1).toBe(false);
    expect(init.payload.length).toBeLessThan(1024);
  });

  it('frame a plain init over 64 KiB correctly (64-bit length), and the deltas after it', async () => {
    const [host] = await serverWithHosts(1, { deflateSnapshots: false });
    await agentFor(host!);
    const http = api(server.url, server.token);
    const command = (await http.post('/api/commands', { host_id: host, op: 'switch' })).body.command.id as string;
    await http.post(`/api/commands/${command}/output`, { output: 'z'.repeat(100_000) });
    const socket = await raw(OFFER);
    const init = await socket.nextFrame();
    expect(init).toMatchObject({ fin: true, rsv1: false, opcode: 1 });
    expect(init.payload.length).toBeGreaterThan(65_536);
    expect(JSON.parse(init.payload.toString())).toMatchObject({ type: 'init', version: server.manager.version });
    await http.post('/api/events', { level: 'info', category: 'test', message: 'after' });
    expect(JSON.parse((await socket.nextFrame()).payload.toString())).toMatchObject({ type: 'delta', version: server.manager.version });
  });

  it('are off, with no extension negotiated, under NIXFLEET_WS_DEFLATE=off', async () => {
    await serverWithHosts(20, { deflateSnapshots: false });
    const socket = await raw(OFFER);
    expect(socket.headers['sec-websocket-extensions']).toBeUndefined();
    expect((await socket.nextFrame()).rsv1).toBe(false);
    expect(server.hub.stats.snapshotDeflations).toBe(0);
  });

  it('deflate once per version and frame type however many clients take it, and serve full_state to a client whose own frames are compressed', async () => {
    await serverWithHosts(20);
    const clients = await Promise.all(Array.from({ length: 30 }, () => recorder()));
    await Promise.all(clients.map((c) => c.waitForVersion(20)));
    expect(server.hub.stats.snapshotDeflations).toBe(1);
    for (const c of clients) {
      expect(c.ws.extensions).toContain('permessage-deflate');
      expect(c.fullState).toEqual(JSON.parse(server.manager.stateJson()));
    }

    await api(server.url, server.token).addHost('late.fleet.example.org');
    // threshold 0: this client deflates even its tiny get_state, so the server must inflate it.
    const compressing = await recorder({ perMessageDeflate: { threshold: 0 } });
    await compressing.waitForVersion(21);
    compressing.send({ type: 'get_state' });
    await compressing.waitFor(() => compressing.messages('full_state').length === 1);
    // Once per version and frame type: init at 20, init and full_state at 21.
    expect(server.hub.stats.snapshotDeflations).toBe(3);
    expect(compressing.fullState).toEqual(JSON.parse(server.manager.stateJson()));
    for (const c of [...clients, compressing]) expect(c.violations).toEqual([]);
  });

  it('count a compressed client frame at its inflated size: a small frame that inflates past 4 KiB is closed with 1009', async () => {
    await serverWithHosts(0);
    const bomb = await recorder({ perMessageDeflate: { threshold: 0 } });
    await bomb.waitForVersion(0);
    bomb.send(`{"type":"get_state","pad":"${'a'.repeat(100_000)}"}`); // ~200 bytes on the wire
    await bomb.waitForClose(3000);
    expect(bomb.closeCode).toBe(1009);
    expect((await api(server.url, server.token).get('/healthz')).status).toBe(200);
  });

  it('keep every client gap-free when deflated inits go out while writes are in flight', async () => {
    const [first] = await serverWithHosts(20);
    const http = api(server.url, server.token);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) await http.patch(`/api/hosts/${first}`, { metrics: { cpu: i % 100, ram: 1, swap: 0, load: 0 } });
    })();
    const clients: SyncRecorder[] = [];
    for (let round = 0; round < 10; round++) {
      clients.push(...(await Promise.all(Array.from({ length: 5 }, () => recorder()))));
      await new Promise((resolve) => setTimeout(resolve, 10)); // joins spread over the writes
    }
    writing = false;
    await writer;
    const final = server.manager.version;
    await Promise.all(clients.map((c) => c.waitForVersion(final)));
    expect(server.hub.stats.snapshotDeflations).toBeGreaterThan(1);
    for (const c of clients) {
      expect(c.violations).toEqual([]);
      expect(c.fullState).toEqual(JSON.parse(server.manager.stateJson()));
    }
  });
});
