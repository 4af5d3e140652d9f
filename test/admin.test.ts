// The first admin and the admin CLI: a generated password shown once and never again, and
// users and tokens managed offline on the store, refused while a server holds it.
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { runAdmin } from '../src/server/admin-cli.js';
import { request } from './support/http.js';
import { spawnServer } from './support/server-process.js';
import { tempDir } from './support/test-server.js';

const defer = cleanupAfterEach();

function scratch(): string {
  const dir = tempDir();
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function admin(dataDir: string, ...argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runAdmin(argv, { NIXFLEET_DATA_DIR: dataDir, NIXFLEET_NEW_PASSWORD: 'a long enough password' }, (line) => lines.push(line));
  return { code, out: lines.join('\n') };
}

describe('the first admin', () => {
  it('gets a random password printed once on the console, never on later starts', async () => {
    const dir = scratch();
    const first = await spawnServer({ NIXFLEET_DATA_DIR: dir, NIXFLEET_ADMIN_PASSWORD: '' });
    const password = /Created user "admin" with password: (\S+)/.exec(first.stdout())?.[1];
    expect(password).toMatch(/^[\w-]{20}$/);
    expect(first.stderr()).not.toContain(password!); // not in the logs
    expect((await request(first.url, 'POST', '/api/login', { username: 'admin', password })).status).toBe(200);
    expect(await first.kill('SIGTERM')).toBe(0);

    const second = await spawnServer({ NIXFLEET_DATA_DIR: dir, NIXFLEET_ADMIN_PASSWORD: '' });
    defer(() => second.kill('SIGKILL'));
    expect(second.stdout()).not.toContain('password');
    expect((await request(second.url, 'POST', '/api/login', { username: 'admin', password })).status).toBe(200);
  });
});

describe('npm run admin', () => {
  it('adds, lists, changes and removes users, and creates and revokes tokens', async () => {
    const dir = scratch();
    expect(await admin(dir, 'user', 'add', 'alice', '--role', 'operator')).toEqual({ code: 0, out: 'added alice' });
    expect((await admin(dir, 'user', 'add', 'alice', '--role', 'operator')).code).not.toBe(0);
    expect((await admin(dir, 'user', 'list')).out).toMatch(/^alice\toperator\tpassword\t/);
    expect((await admin(dir, 'user', 'role', 'alice', 'viewer')).out).toBe('alice is now viewer');
    const totp = await admin(dir, 'user', 'totp', 'alice', 'enable');
    expect(totp.out).toMatch(/uri: otpauth:\/\/totp\/NixFleet:alice\?secret=[A-Z2-7]+/);
    const created = await admin(dir, 'token', 'create', 'web-1 agent', '--role', 'agent', '--host', 'web-1');
    const token = /nft_[a-z0-9]{12}_[\w-]{43}/.exec(created.out)?.[0];
    expect(token).toBeDefined();
    const id = token!.split('_')[1]!;
    expect((await admin(dir, 'token', 'list')).out).toMatch(new RegExp(`^${id}\\tweb-1 agent\\tagent:web-1\\tactive$`, 'm'));
    expect((await admin(dir, 'token', 'revoke', id)).code).toBe(0);
    expect((await admin(dir, 'token', 'list')).out).toMatch(new RegExp(`^${id}\\t.*revoked`, 'm'));
    expect((await admin(dir, 'token', 'create', 'bad', '--role', 'agent')).code).not.toBe(0);
    expect((await admin(dir, 'user', 'remove', 'alice')).out).toBe('removed alice');

    // What the CLI wrote is what the server reads.
    await admin(dir, 'user', 'add', 'bob', '--role', 'admin');
    const server = await spawnServer({ NIXFLEET_DATA_DIR: dir });
    defer(() => server.kill('SIGKILL'));
    expect((await request(server.url, 'POST', '/api/login', { username: 'bob', password: 'a long enough password' })).body.user).toEqual({ name: 'bob', role: 'admin' });
    expect((await request(server.url, 'GET', '/api/state', undefined, { authorization: `Bearer ${token}` })).status).toBe(401);
  }, 60_000);

  it('refuses to touch a store a running server holds, saying what to do', async () => {
    const dir = scratch();
    const server = await spawnServer({ NIXFLEET_DATA_DIR: dir });
    defer(() => server.kill('SIGKILL'));
    const result = await admin(dir, 'user', 'list');
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/in use by another process .*While the server runs, use the dashboard's Access page/);
  });

  it('prints usage for unknown commands', async () => {
    const result = await admin(scratch(), 'frobnicate', 'now');
    expect(result.code).toBe(2);
    expect(result.out).toContain('usage: npm run admin');
  });
});
