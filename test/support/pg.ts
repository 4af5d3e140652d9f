// PostgreSQL for tests: NIXFLEET_TEST_DATABASE_URL names a database on a server where the user
// may create databases (.ci/run sets it); each test gets a fresh database of its own. Without
// the variable, PostgreSQL tests are skipped, and say so.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const TEST_DATABASE_URL = process.env.NIXFLEET_TEST_DATABASE_URL ?? '';
export const pgAvailable = TEST_DATABASE_URL !== '';
export const PG_SKIP_REASON = 'set NIXFLEET_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run the PostgreSQL tests; .ci/run does';

export interface FreshDatabase {
  url: string;
  /** Runs SQL as an administrator of the server (for pg_terminate_backend and the like). */
  admin(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  drop(): Promise<void>;
}

export async function freshDatabase(): Promise<FreshDatabase> {
  const name = `nixfleet_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    admin: (sql, params) => admin.query(sql, params as unknown[]),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.end();
    },
  };
}
