// Every registered route against the callers who must be refused: anonymous, a viewer, and the
// agent token of another host. The rule each route should have is written here once more, on
// purpose: a route whose declared access is loosened, or a new route nobody decided about, fails
// this test; and every refusal is made by the front door before any handler runs (the state
// does not move).
import { describe, expect, it } from 'vitest';
import type { Access } from '../src/protocol/api.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { withAgents } from './support/go-agent.js';
import { api, request } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const defer = cleanupAfterEach();

/** Who may call each route: what the front door must enforce. */
const EXPECTED: Record<string, string> = {
  health: 'public',
  login: 'public',
  dashboard: 'public',
  loginPage: 'public',
  asset: 'public',
  logout: 'authenticated',
  me: 'authenticated',
  state: 'read',
  commandOutput: 'read',
  createHost: 'operate',
  removeHost: 'operate',
  startCommand: 'operate',
  cancelCommand: 'operate',
  createPipeline: 'operate',
  cancelPipeline: 'operate',
  updatePipeline: 'operate',
  finishPipeline: 'operate',
  updateHost: 'report:path',
  appendOutput: 'report:command',
  finishCommand: 'report:command',
  createEvent: 'report:body',
  listTokens: 'admin',
  createToken: 'admin',
  revokeToken: 'admin',
  listUsers: 'admin',
  createUser: 'admin',
  updateUser: 'admin',
  removeUser: 'admin',
  enableTotp: 'self_or_admin',
  disableTotp: 'self_or_admin',
};

function ruleOf(access: Access): string {
  switch (access.kind) {
    case 'role':
      return access.action;
    case 'report':
      return `report:${access.host}`;
    default:
      return access.kind;
  }
}

/** A fleet to aim at: host web-1 with a running command and a pipeline, a second host, a viewer and an agent of web-2. */
async function fleet(): Promise<{ s: TestServer; ids: Record<string, string>; viewer: string; agentOfOther: string }> {
  const s = await startTestServer();
  defer(() => s.dispose());
  const admin = api(s.url, s.token);
  await admin.addHost('web-1');
  await admin.addHost('web-2');
  await withAgents(s, ['web-1'], defer);
  const command = (await admin.post('/api/commands', { host_id: 'web-1', op: 'switch' })).body.command.id as string;
  const pipeline = (await admin.post('/api/pipelines', { name: 'p', hosts: ['web-1'], stages: ['pull'] })).body.pipeline.id as string;
  const viewer = (await admin.post('/api/tokens', { name: 'viewer', role: 'viewer' })).body;
  const agentOfOther = (await admin.post('/api/tokens', { name: 'agent web-2', role: 'agent', host_id: 'web-2' })).body.token as string;
  expect((await admin.post('/api/users', { name: 'vera', role: 'viewer', password: 'vera has a long password' })).status).toBe(201);
  return { s, ids: { host: 'web-1', command, pipeline, token: viewer.id, user: 'vera' }, viewer: viewer.token, agentOfOther };
}

/** A valid request for each route that takes parameters or a body, aimed at web-1. */
function sample(name: string, ids: Record<string, string>): { params: Record<string, string>; body?: unknown } {
  const table: Record<string, { params?: Record<string, string>; body?: unknown }> = {
    login: { body: { username: 'vera', password: 'wrong password!!' } },
    asset: { params: { file: 'app.js' } },
    createHost: { body: { hostname: 'web-9' } },
    updateHost: { params: { id: ids.host! }, body: { status: 'offline' } },
    removeHost: { params: { id: ids.host! } },
    startCommand: { body: { host_id: ids.host!, op: 'pull' } },
    appendOutput: { params: { id: ids.command! }, body: { output: 'forged\n' } },
    finishCommand: { params: { id: ids.command! }, body: { status: 'success', exit_code: 0 } },
    cancelCommand: { params: { id: ids.command! } },
    commandOutput: { params: { id: ids.command! } },
    createPipeline: { body: { name: 'p2', hosts: [ids.host!], stages: ['pull'] } },
    cancelPipeline: { params: { id: ids.pipeline! } },
    updatePipeline: { params: { id: ids.pipeline! }, body: { status: 'running' } },
    finishPipeline: { params: { id: ids.pipeline! }, body: { status: 'cancelled' } },
    createEvent: { body: { level: 'info', category: 'agent', message: 'forged', host_id: ids.host! } },
    createToken: { body: { name: 'mine', role: 'admin' } },
    revokeToken: { params: { id: ids.token! } },
    createUser: { body: { name: 'mallory', role: 'admin', password: 'mallory has a long password' } },
    updateUser: { params: { name: ids.user! }, body: { role: 'admin' } },
    removeUser: { params: { name: ids.user! } },
    enableTotp: { params: { name: ids.user! }, body: { password: 'vera has a long password' } },
    disableTotp: { params: { name: ids.user! }, body: { password: 'vera has a long password' } },
  };
  return { params: table[name]?.params ?? {}, ...(table[name]?.body !== undefined ? { body: table[name]!.body } : {}) };
}

function fill(path: string, params: Record<string, string>): string {
  return path.replace(/:([a-z_]+)/g, (_m, p: string) => {
    if (params[p] === undefined) throw new Error(`no sample for :${p} in ${path}`);
    return encodeURIComponent(params[p]!);
  });
}

describe('the front door', () => {
  it('serves exactly the routes this test knows, each with the rule it should have', async () => {
    const { s } = await fleet();
    const declared = Object.fromEntries(s.routes.map((r) => [r.name, ruleOf(r.access)]));
    expect(declared).toEqual(EXPECTED);
  });

  it('refuses anonymous callers, viewers and the agent of another host on every route whose rule excludes them, before the handler runs', async () => {
    const { s, ids, viewer, agentOfOther } = await fleet();
    const version = s.manager.version;
    const users = s.auth.listUsers().length;
    const tokens = s.auth.listTokens().length;
    const callers: Array<[string, Record<string, string>, (rule: string) => boolean]> = [
      ['anonymous', {}, (rule) => rule === 'public'],
      ['viewer', { authorization: `Bearer ${viewer}` }, (rule) => ['public', 'authenticated', 'read'].includes(rule)],
      ['agent of web-2', { authorization: `Bearer ${agentOfOther}` }, (rule) => ['public', 'authenticated'].includes(rule)],
    ];
    const checked: string[] = [];
    for (const route of s.routes) {
      const rule = EXPECTED[route.name]!;
      const { params, body } = sample(route.name, ids);
      const path = fill(route.path, params);
      for (const [who, headers, allowed] of callers) {
        if (allowed(rule)) continue;
        const answer = await request(s.url, route.method, path, body, headers);
        expect({ route: route.name, who, status: answer.status }).toEqual({ route: route.name, who, status: who === 'anonymous' ? 401 : 403 });
        checked.push(`${route.name}/${who}`);
      }
    }
    // Nothing any of them sent changed anything.
    expect(s.manager.version).toBe(version);
    expect(s.auth.listUsers()).toHaveLength(users);
    expect(s.auth.listTokens().filter((t) => t.revokedAt === null)).toHaveLength(tokens);
    expect(checked.length).toBeGreaterThan(50);
  });

  it('lets the agent of web-1 report for web-1 through every report route', async () => {
    const { s, ids } = await fleet();
    const agent = (await api(s.url, s.token).post('/api/tokens', { name: 'agent web-1', role: 'agent', host_id: 'web-1' })).body.token as string;
    for (const route of s.routes.filter((r) => EXPECTED[r.name]!.startsWith('report:'))) {
      const { params, body } = sample(route.name, ids);
      const answer = await request(s.url, route.method, fill(route.path, params), body, { authorization: `Bearer ${agent}` });
      expect({ route: route.name, status: answer.status }).toEqual({ route: route.name, status: route.name === 'createEvent' ? 201 : 200 });
    }
  });
});
