// The HTTP API over a real socket: every route's success, its errors (400 naming the field,
// 404, 409, 405, 413, 415), and the promise that nothing invalid reaches the change log.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostDetailOf } from '../src/protocol/fleet-state.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { withAgents } from './support/go-agent.js';
import { api, request } from './support/http.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();

let server: TestServer;
let http: ReturnType<typeof api>;

beforeEach(async () => {
  server = await startTestServer({ maxBodyBytes: 64 * 1024 });
  http = api(server.url, server.token);
});
afterEach(() => server.dispose());

describe('hosts', () => {
  it('adds a host with defaults, announces it as host_added and refuses a duplicate with 409', async () => {
    const client = await SyncRecorder.connect(server.wsUrl, { headers: server.authHeaders });
    const res = await http.post('/api/hosts', { hostname: 'web-1.example.org', host_type: 'nixos' });
    expect(res.status).toBe(201);
    expect(res.body.version).toBe(1);
    expect(res.body.host).toMatchObject({ id: 'web-1.example.org', hostname: 'web-1.example.org', status: 'unknown', pending_command: null, metrics: null });
    expect(res.body.host.compartments.git).toEqual({ status: 'unknown', message: '', checked_at: null });
    expect(res.body.host.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await client.waitForVersion(1);
    expect(client.messages('delta')[0]!.payload).toEqual({ type: 'host_added', host: res.body.host });
    client.close();

    expect((await http.post('/api/hosts', { hostname: 'web-1.example.org' })).status).toBe(409);
    expect((await http.post('/api/hosts', { hostname: 'other', id: 'web-1.example.org' })).status).toBe(409);
  });

  it('updates fields, merging compartments, and removes hosts; unknown ids are 404', async () => {
    await http.addHost('h1');
    const checked = { status: 'outdated', message: 'behind by 2 commits', checked_at: '2026-11-01T10:00:00.000Z' };
    expect((await http.patch('/api/hosts/h1', { status: 'online', compartments: { git: checked } })).body).toEqual({ version: 2 });
    const host = server.manager.state.hosts.get('h1')!;
    expect(host.status).toBe('online');
    expect(host.compartments.git).toEqual(checked);
    expect(host.compartments.lock.status).toBe('unknown');
    expect((await http.patch('/api/hosts/nope', { status: 'online' })).status).toBe(404);
    expect((await http.delete('/api/hosts/nope')).status).toBe(404);
    expect((await http.delete('/api/hosts/h1')).body).toEqual({ version: 3 });
    expect(server.manager.state.hosts.size).toBe(0);
  });
});

describe('commands', () => {
  it('runs a command reported over HTTP through start, output and finish, one per host at a time', async () => {
    await http.addHost('h1');
    // A command needs a live agent to carry it, even when its output comes over HTTP (a CI job).
    expect((await http.post('/api/commands', { host_id: 'h1', op: 'switch' })).body.error).toBe('host_offline');
    const [agent] = await withAgents(server, ['h1'], defer);
    const started = await http.post('/api/commands', { host_id: 'h1', op: 'switch' });
    expect(started.status).toBe(201);
    expect(started.body.command).toMatchObject({ host_id: 'h1', op: 'switch', status: 'pending', started_at: null, exit_code: null, output: '' });
    const id = started.body.command.id as string;
    expect(server.manager.state.hosts.get('h1')!.pending_command).toBe(id);

    const busy = await http.post('/api/commands', { host_id: 'h1', op: 'pull' });
    expect(busy.status).toBe(409);
    expect(busy.body.message).toMatch(/busy/);

    const removeBusy = await http.delete('/api/hosts/h1');
    expect(removeBusy.status).toBe(409);
    expect(removeBusy.body.message).toMatch(/busy/);

    expect((await http.post(`/api/commands/${id}/output`, { output: 'hello\n' })).status).toBe(200);
    expect(server.manager.state.commands.get(id)).toMatchObject({ status: 'running' }); // its first output started it
    expect((await http.post(`/api/commands/${id}/output`, { output: 'world\n' })).status).toBe(200);
    const finished = await http.post(`/api/commands/${id}/finish`, { status: 'error', exit_code: 2 });
    expect(finished.status).toBe(200);
    const command = server.manager.state.commands.get(id)!;
    expect(command).toMatchObject({ status: 'error', exit_code: 2, output: 'hello\nworld\n', output_size: 12 });
    expect(command.finished_at).not.toBeNull();
    expect(server.manager.state.hosts.get('h1')!.pending_command).toBeNull();

    expect((await http.post(`/api/commands/${id}/output`, { output: 'late' })).status).toBe(409);
    expect((await http.post(`/api/commands/${id}/finish`, { status: 'success', exit_code: 0 })).status).toBe(409);
    expect((await http.get(`/api/commands/${id}/output`)).body).toBe('hello\nworld\n');
    const second = (await http.post('/api/commands', { host_id: 'h1', op: 'pull' })).body.command.id as string;
    // Cancelling asks the agent to stop (202); it confirms with its status.
    expect((await http.post(`/api/commands/${second}/cancel`)).status).toBe(202);
    agent!.status('stopped', 'pull', 130, 'terminated by user');
    await until('cancelled', () => server.manager.state.commands.get(second)!.status === 'cancelled');
    expect(server.manager.state.commands.get(second)).toMatchObject({ status: 'cancelled', exit_code: 130 });
    expect(server.manager.state.hosts.get('h1')!.pending_command).toBeNull();
    expect((await http.post(`/api/commands/${second}/cancel`)).status).toBe(409);
  });

  it('404s on unknown hosts and commands', async () => {
    expect((await http.post('/api/commands', { host_id: 'ghost', op: 'switch' })).status).toBe(404);
    expect((await http.post('/api/commands/nope/output', { output: 'x' })).status).toBe(404);
    expect((await http.post('/api/commands/nope/finish', { status: 'success', exit_code: 0 })).status).toBe(404);
    expect((await http.get('/api/commands/nope/output')).status).toBe(404);
    expect((await http.get('/api/commands/..%2F..%2Fetc%2Fpasswd/output')).status).toBe(404);
  });
});

describe('pipelines and events', () => {
  it('starts a pipeline the server runs; the routes that let a client drive one answer 405', async () => {
    await http.addHost('a');
    await http.addHost('b');
    const started = await http.post('/api/pipelines', { name: 'do-all', hosts: ['a', 'b'], stages: ['pull', 'switch', 'test'] });
    expect(started.status).toBe(201);
    expect(started.body.pipeline).toMatchObject({ status: 'running', run_by: 'server', current_stage: 0, host_status: { a: 'pending', b: 'pending' }, parallel: null, canary: null, max_failures: null });
    const id = started.body.pipeline.id as string;
    // Neither host has an agent: both are dropped when their first stage is due, and it fails.
    await until('the pipeline ends', () => server.manager.state.pipelines.get(id)?.status === 'failed');
    expect(hostDetailOf(server.manager.state.pipelines.get(id)!, 'a').dropped).toMatchObject({ reason: 'offline', stage: 0, op: 'pull' });
    const version = server.manager.version;
    for (const [method, path, body] of [
      ['PATCH', `/api/pipelines/${id}`, { current_stage: 1, host_status: { a: 'success' } }],
      ['POST', `/api/pipelines/${id}/finish`, { status: 'complete' }],
      ['POST', `/api/pipelines/${id}/finish`, undefined],
    ] as const) {
      const res = await request(server.url, method, path, body, server.authHeaders);
      expect({ method, path, status: res.status, error: res.body.error }).toEqual({ method, path, status: 405, error: 'method_not_allowed' });
      expect(res.body.message).toMatch(/^the server runs pipelines/);
      expect(res.headers.get('allow')).toBe('');
    }
    expect((await http.post(`/api/pipelines/${id}/cancel`)).status).toBe(409);
    expect(server.manager.version).toBe(version);
    expect((await http.post('/api/pipelines', { name: 'x', hosts: ['a', 'ghost'], stages: ['pull'] })).status).toBe(404);
    const preset = await http.post('/api/pipelines', { name: 'agents', hosts: ['a'], preset: 'update-agent' });
    expect(preset.body.pipeline).toMatchObject({ stages: ['pull', 'switch', 'restart'], preset: 'update-agent' });
  });

  it('logs events, trimmed to the configured limit', async () => {
    for (let i = 0; i < 105; i++) {
      const res = await http.post('/api/events', { level: 'warning', category: 'agent', message: `m${i}`, details: { attempt: i, ok: false } });
      expect(res.status).toBe(201);
    }
    const events = (await http.get('/api/state')).body.payload.events;
    expect(events).toHaveLength(100);
    expect(events[0].message).toBe('m5');
    expect(events.at(-1)).toMatchObject({ level: 'warning', category: 'agent', message: 'm104', details: { attempt: 104, ok: false }, host_id: null });
  });
});

describe('reads', () => {
  it('serves /healthz and /api/state as the full_state frame', async () => {
    await http.addHost('h1');
    expect((await http.get('/healthz')).body).toEqual({ status: 'ok', epoch: server.manager.epoch, version: 1 });
    const state = await http.get('/api/state');
    expect(state.headers.get('cache-control')).toBe('no-store');
    expect(state.body).toMatchObject({ type: 'full_state', epoch: server.manager.epoch, version: 1 });
    expect(Object.keys(state.body.payload)).toEqual(['hosts', 'commands', 'pipelines', 'events', 'limits']);
  });
});

describe('bad input', () => {
  it('answers 400 naming the field, 404/405/413/415 as documented, and never changes the version', async () => {
    await http.addHost('h1');
    const version = server.manager.version;
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['POST', '/api/hosts', {}, 400, /hostname/],
      ['POST', '/api/hosts', { hostname: 'x', id: '../etc' }, 400, /^id: /],
      ['POST', '/api/hosts', { hostname: 'x', id: '__proto__' }, 400, /^id: /],
      ['POST', '/api/hosts', { hostname: 'x', id: 'constructor' }, 400, /reserved/],
      ['POST', '/api/hosts', { hostname: 'x', status: 'exploded' }, 400, /^status: /],
      ['POST', '/api/hosts', { hostname: 'x', metrics: { cpu: 500, ram: 0, swap: 0, load: 0 } }, 400, /metrics\.cpu/],
      ['POST', '/api/hosts', { hostname: 'x', extra: 1 }, 400, /extra/],
      ['POST', '/api/hosts', '{"hostname":"x","__proto__":{"admin":true}}', 400, /__proto__/],
      ['PATCH', '/api/hosts/h1', {}, 400, /at least one field/],
      ['PATCH', '/api/hosts/h1', { pending_command: 'x' }, 400, /pending_command/],
      ['PATCH', '/api/hosts/h1', { compartments: { git: { status: 'ok' } } }, 400, /compartments\.git/],
      ['PATCH', '/api/hosts/h1', { last_seen: 'yesterday' }, 400, /last_seen/],
      ['POST', '/api/commands', { host_id: 'h1', op: 'rm -rf /' }, 400, /^op: /],
      ['POST', '/api/commands', { host_id: 'h1' }, 400, /^op: /],
      ['POST', '/api/pipelines', { name: 'p', hosts: [], stages: ['pull'] }, 400, /^hosts: /],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1', 'h1'], stages: ['pull'] }, 400, /repeat/],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'] }, 400, /^stages: give either stages or a preset \(do-all, update-agent\), not neither/],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], stages: ['pull'], preset: 'do-all' }, 400, /^stages: .*not both/],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], preset: 'yolo' }, 400, /^preset: /],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], stages: ['pull'], parallel: 0 }, 400, /^parallel: /],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], stages: ['pull'], parallel: 1.5 }, 400, /^parallel: /],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], stages: ['pull'], canary: 1 }, 400, /^canary: must leave hosts after the canary/],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], stages: ['pull'], canary: 0 }, 400, /^canary: /],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], stages: ['pull'], max_failures: 1 }, 400, /^max_failures: must be less than the 1 hosts/],
      ['POST', '/api/pipelines', { name: 'p', hosts: ['h1'], stages: ['pull'], max_failures: -1 }, 400, /^max_failures: /],
      ['POST', '/api/commands', { host_id: 'h1', op: 'pull', pipeline_id: 'p-1' }, 400, /^pipeline_id: a command cannot join a pipeline/],
      ['POST', '/api/events', { level: 'info', category: 'x', message: 'm', details: { nested: { a: 1 } } }, 400, /details/],
      ['POST', '/api/events', { level: 'info', category: 'x', message: 'm', details: { constructor: 1 } }, 400, /details/],
      ['POST', '/api/events', { level: 'loud', category: 'x', message: 'm' }, 400, /^level: /],
      ['POST', '/api/hosts', 'not json', 400, /not valid JSON/],
      ['POST', '/api/hosts', '[1,2]', 400, /JSON object/],
      ['PUT', '/api/hosts', { hostname: 'x' }, 405, /use POST/],
      ['GET', '/api/nothing', undefined, 404, /no route/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const res = await request(server.url, method, path, body, server.authHeaders);
      expect({ method, path, body, status: res.status }).toEqual({ method, path, body, status });
      expect(res.body.message).toMatch(message);
    }
    const wrongType = await request(server.url, 'POST', '/api/hosts', 'hostname=x', { 'content-type': 'application/x-www-form-urlencoded', ...server.authHeaders });
    expect(wrongType.status).toBe(415);
    const huge = await http.post('/api/events', { level: 'info', category: 'x', message: 'm'.repeat(100_000) });
    expect(huge.status).toBe(413);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(server.manager.version).toBe(version);
    expect((await http.get('/healthz')).status).toBe(200);
  });

  it('keeps serving after a client aborts mid-body', async () => {
    const { connect } = await import('node:net');
    const { port } = new URL(server.url);
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /api/hosts HTTP/1.1\r\nHost: x\r\nAuthorization: ${server.authHeaders.authorization}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"hostname":`);
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
    });
    expect((await http.get('/healthz')).status).toBe(200);
    expect(server.manager.version).toBe(0);
  });
});
