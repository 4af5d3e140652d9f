// Names that impersonate (issue 12, hole 4): a hostname with control characters, a bidi override
// or a zero-width space, or one that differs from another only in case, looked like another host
// in the table. Each test makes the attempt through the API, as an operator and as an agent
// renaming its own host, and checks the rule holds for the other names people read.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { emptyState, toFullState, type Change } from '../src/protocol/index.js';
import { DEFAULT_CONFIG } from '../src/server/config.js';
import { SqliteStore } from '../src/server/store/sqlite-store.js';
import { api } from './support/http.js';
import { startTestServer, tempDir, type TestServer } from './support/test-server.js';

const defer = cleanupAfterEach();

async function server(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const s = await startTestServer(overrides);
  defer(() => s.dispose());
  return s;
}

/** One server for the attempts that must change nothing: host web-a, and its agent's token. */
let shared: TestServer;
let agentOfWebA: string;
beforeAll(async () => {
  shared = await startTestServer();
  await api(shared.url, shared.token).addHost('web-a');
  agentOfWebA = (await api(shared.url, shared.token).post('/api/tokens', { name: 'agent web-a', role: 'agent', host_id: 'web-a' })).body.token;
});
afterAll(() => shared.dispose());

/** Sends what `attempt` sends and checks that the server's state did not move. */
async function refused(attempt: (s: TestServer) => Promise<{ status: number; body: any }>): Promise<{ status: number; body: any }> {
  const version = shared.manager.version;
  const answer = await attempt(shared);
  expect(shared.manager.version).toBe(version);
  return answer;
}

/** Names that would render like `web-b`, or hide what they are. */
const TRICKS: Array<[string, string]> = [
  ['a zero-width space', 'web-b\u200B'],
  ['a zero-width joiner inside', 'web\u200D-b'],
  ['a right-to-left override', '\u202Eb-bew'],
  ['a bidi isolate', 'web-b\u2066'],
  ['a control character', 'web-b\u0007'],
  ['a newline', 'web-b\nweb-c'],
  ['a Cyrillic look-alike letter', 'w\u0435b-b'],
  ['a full-width letter', 'ｗeb-b'],
  ['a non-breaking space', 'web-b\u00A0'],
  ['an underscore', 'web_b'],
  ['a label starting with a hyphen', '-web-b'],
  ['an empty label', 'web..b'],
  ['a label of 64 characters', `${'a'.repeat(64)}.example.org`],
];

describe('hostnames follow RFC 1123', () => {
  it.each(TRICKS)('refuses %s when a host is added (400)', async (_what, hostname) => {
    const answer = await refused((s) => api(s.url, s.token).post('/api/hosts', { hostname }));
    expect(answer.status).toBe(400);
    expect(answer.body.message).toMatch(/^hostname: /);
  });

  it('refuses every trick on rename, by an operator and by the host\'s own agent', async () => {
    for (const [what, hostname] of TRICKS) {
      for (const [who, token] of [['operator', shared.token], ['agent', agentOfWebA]] as const) {
        const answer = await refused((s) => api(s.url, token).patch('/api/hosts/web-a', { hostname }));
        expect({ what, who, status: answer.status }).toEqual({ what, who, status: 400 });
      }
    }
    expect(shared.manager.state.hosts.get('web-a')!.hostname).toBe('web-a');
  });

  it('treats hostnames that differ only in case as the same name (409), on add and on rename', async () => {
    const s = await server();
    const admin = api(s.url, s.token);
    await admin.addHost('web-b');
    await admin.addHost('web-c.example.org');
    expect((await admin.post('/api/hosts', { hostname: 'WEB-B', id: 'other' })).status).toBe(409);
    expect((await admin.patch('/api/hosts/web-b', { hostname: 'Web-C.Example.Org' })).status).toBe(409);
    // A host may change the case of its own name.
    expect((await admin.patch('/api/hosts/web-b', { hostname: 'Web-B' })).status).toBe(200);
    expect((await admin.post('/api/hosts', { hostname: 'web-d' })).status).toBe(201);
  });

  it('keeps a host whose name was stored before the rule readable and usable', async () => {
    const dataDir = tempDir();
    defer(() => rmSync(dataDir, { recursive: true, force: true }));
    // A store written by an older server, holding a name the rule now refuses.
    const store = new SqliteStore({ dataDir });
    await store.open(JSON.stringify(toFullState(emptyState(DEFAULT_CONFIG.limits))));
    const compartment = { status: 'unknown', message: '', checked_at: null } as const;
    const legacy: Change = {
      type: 'host_added',
      host: { id: 'legacy', hostname: 'Legacy_Host ✓', host_type: 'nixos', status: 'online', last_seen: null, agent_version: null, generation: null, os_version: null, nixpkgs_version: null, metrics: null, pending_command: null, compartments: { git: compartment, lock: compartment, system: compartment, tests: compartment }, created_at: '2026-01-01T00:00:00.000Z' },
    };
    await store.commit([{ version: 1, change: legacy }]);
    await store.close();

    const s = await server({ dataDir });
    const admin = api(s.url, s.token);
    expect((await admin.get('/api/state')).body.payload.hosts[0].hostname).toBe('Legacy_Host ✓');
    expect((await admin.patch('/api/hosts/legacy', { status: 'offline' })).status).toBe(200);
    expect((await admin.patch('/api/hosts/legacy', { hostname: 'legacy-host' })).status).toBe(200);
  });
});

describe('the other names people read', () => {
  const VISUAL_TRICKS = TRICKS.slice(0, 6);

  it.each(VISUAL_TRICKS)('refuses a pipeline name with %s', async (_what, trick) => {
    const answer = await refused((s) => api(s.url, s.token).post('/api/pipelines', { name: `deploy ${trick}`, hosts: ['web-a'], stages: ['pull'] }));
    expect(answer.status).toBe(400);
    expect(answer.body.message).toMatch(/^name: /);
  });

  it.each(VISUAL_TRICKS)('refuses a token name with %s', async (_what, trick) => {
    const tokens = shared.auth.listTokens().length;
    const answer = await refused((s) => api(s.url, s.token).post('/api/tokens', { name: `ci ${trick}`, role: 'viewer' }));
    expect(answer.status).toBe(400);
    expect(answer.body.message).toMatch(/^name: /);
    expect(shared.auth.listTokens()).toHaveLength(tokens);
  });

  it.each(VISUAL_TRICKS)('refuses a user name with %s', async (_what, trick) => {
    const answer = await refused((s) => api(s.url, s.token).post('/api/users', { name: `alice${trick}`, role: 'viewer', password: 'a long enough password' }));
    expect(answer.status).toBe(400);
    expect(shared.auth.listUsers().map((u) => u.name)).toEqual(['admin']);
  });

  it('accepts names in other scripts where no identity hangs on them, and spaces inside', async () => {
    const s = await server();
    const admin = api(s.url, s.token);
    await admin.addHost('web-a');
    expect((await admin.post('/api/pipelines', { name: 'Prüfung: Rollout Ärger-frei', hosts: ['web-a'], stages: ['pull'] })).status).toBe(201);
    expect((await admin.post('/api/tokens', { name: 'CI – nightly', role: 'viewer' })).status).toBe(201);
  });
});
