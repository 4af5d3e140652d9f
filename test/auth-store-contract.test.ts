// One contract, every AuthStore: SQLite always, PostgreSQL when NIXFLEET_TEST_DATABASE_URL is set.
// What AuthService relies on: users found ignoring case, a TOTP step claimed once and never moved
// back for the same secret, sessions whose last use never moves back and that go with their
// user, and tokens whose revocation is the only change they take.
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { emptyState, toFullState } from '../src/protocol/index.js';
import type { AuthStore, SessionRecord, TokenRecord, UserRecord } from '../src/server/auth/auth-store.js';
import { openStores } from '../src/server/store/open-stores.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { freshDatabase, pgAvailable, PG_SKIP_REASON } from './support/pg.js';
import { tempDir } from './support/test-server.js';

const defer = cleanupAfterEach();
const INITIAL = JSON.stringify(toFullState(emptyState()));

/** Opens the stores a configuration means (the same function the server and the CLI use). */
async function authStore(config: { databaseUrl: string | null; dataDir: string }): Promise<AuthStore> {
  const { store, authStore } = openStores({ ...config, sqliteSynchronous: 'NORMAL', changeLogRetention: 10 });
  await store.open(INITIAL);
  defer(() => store.close());
  return authStore;
}

const implementations: Array<[string, boolean, () => Promise<AuthStore>]> = [
  [
    'SqliteAuthStore',
    true,
    async () => {
      const dir = tempDir();
      defer(() => rmSync(dir, { recursive: true, force: true }));
      return authStore({ databaseUrl: null, dataDir: dir });
    },
  ],
  [
    'PgAuthStore',
    pgAvailable,
    async () => {
      const db = await freshDatabase();
      defer(() => db.drop());
      return authStore({ databaseUrl: db.url, dataDir: '/nonexistent' });
    },
  ],
];

const user = (name: string, fields: Partial<UserRecord> = {}): UserRecord => ({ name, role: 'viewer', passwordHash: 'scrypt$h', totpSecret: null, totpLastStep: null, createdAt: '2026-01-01T00:00:00.000Z', ...fields });
const session = (idHash: string, userName: string, lastSeenAt = 1000): SessionRecord => ({ idHash, userName, csrfToken: `csrf-${idHash}`, createdAt: 1000, lastSeenAt });
const token = (id: string, fields: Partial<TokenRecord> = {}): TokenRecord => ({ id, name: `token ${id}`, role: 'viewer', hostId: null, secretHash: `h-${id}`, createdBy: 'admin', createdAt: '2026-01-01T00:00:00.000Z', revokedAt: null, ...fields });

for (const [name, available, make] of implementations) {
  describe.skipIf(!available)(`${name} (auth store contract)`, () => {
    it('keeps users, and updates or removes them by name ignoring case', async () => {
      const store = await make();
      await store.putUser(user('Alice'));
      await store.putUser(user('bob', { role: 'admin' }));
      await store.putUser(user('Alice', { role: 'operator', passwordHash: 'scrypt$new' }));
      let { users } = await store.loadAll();
      expect(users.map((u) => [u.name, u.role, u.passwordHash]).sort()).toEqual([['Alice', 'operator', 'scrypt$new'], ['bob', 'admin', 'scrypt$h']]);
      await store.deleteUser('ALICE');
      ({ users } = await store.loadAll());
      expect(users.map((u) => u.name)).toEqual(['bob']);
    });

    it('claims a TOTP step once, and never a step at or below the last one', async () => {
      const store = await make();
      await store.putUser(user('alice', { totpSecret: 'S1' }));
      expect(await store.claimTotpStep('ALICE', 100)).toBe(true);
      expect(await store.claimTotpStep('alice', 100)).toBe(false);
      expect(await store.claimTotpStep('alice', 99)).toBe(false);
      const raced = await Promise.all([store.claimTotpStep('alice', 101), store.claimTotpStep('alice', 101)]);
      expect(raced.sort()).toEqual([false, true]);
      expect(await store.claimTotpStep('nobody', 5)).toBe(false);
    });

    it('never moves the TOTP step back for the same secret, and starts over with a new or removed one', async () => {
      const store = await make();
      await store.putUser(user('alice', { totpSecret: 'S1' }));
      expect(await store.claimTotpStep('alice', 200)).toBe(true);
      // An instance that has not seen the claim writes the user with its older step.
      await store.putUser(user('alice', { role: 'operator', totpSecret: 'S1', totpLastStep: 150 }));
      expect((await store.loadAll()).users[0]).toMatchObject({ role: 'operator', totpLastStep: 200 });
      await store.putUser(user('alice', { totpSecret: 'S2', totpLastStep: null })); // re-keyed
      expect((await store.loadAll()).users[0]).toMatchObject({ totpSecret: 'S2', totpLastStep: null });
      expect(await store.claimTotpStep('alice', 10)).toBe(true);
      await store.putUser(user('alice', { totpSecret: null, totpLastStep: null })); // turned off
      expect((await store.loadAll()).users[0]).toMatchObject({ totpSecret: null, totpLastStep: null });
    });

    it('never moves a session\'s last use back, and removes a user\'s sessions with the user', async () => {
      const store = await make();
      await store.putUser(user('alice'));
      await store.putUser(user('bob'));
      await store.putSession(session('s1', 'alice'));
      await store.putSession(session('s2', 'bob'));
      await store.touchSession('s1', 5000);
      await store.touchSession('s1', 3000); // a slower instance, late
      expect((await store.loadAll()).sessions.find((s) => s.idHash === 's1')!.lastSeenAt).toBe(5000);
      await store.deleteSession('s2');
      await store.putSession(session('s3', 'alice'));
      await store.deleteUser('alice');
      expect((await store.loadAll()).sessions).toEqual([]);
    });

    it('stores a token once and takes only its revocation afterwards', async () => {
      const store = await make();
      await store.putToken(token('t1', { role: 'agent', hostId: 'web-1' }));
      await store.putToken(token('t1', { name: 'renamed?', role: 'admin', revokedAt: '2026-02-01T00:00:00.000Z' }));
      const { tokens } = await store.loadAll();
      expect(tokens).toEqual([token('t1', { role: 'agent', hostId: 'web-1', revokedAt: '2026-02-01T00:00:00.000Z' })]);
    });
  });
}

describe.skipIf(pgAvailable)('PostgreSQL auth store tests', () => {
  it.skip(`skipped: ${PG_SKIP_REASON}`, () => {});
});
