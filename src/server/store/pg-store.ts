// The PostgreSQL store: several server instances share one version stream. The version is
// taken from a counter row locked inside the transaction that writes the change (never a
// sequence: sequences leave gaps and commit out of order), so commit order is version order.
// Each commit NOTIFYs only its version; instances LISTEN and read the change log from their
// last seen version, and a poll of the counter covers lost notifications and dead listeners.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Change } from '../../protocol/schema.js';
import { silentLogger, type Logger } from '../logger.js';
import { PG_MIGRATIONS } from './pg-schema.js';
import { checkContinuous, StoreError, type ChangeRecord, type OutputChunk, type Store, type StoredState } from './store.js';

/** Parse BIGINT (OID 20) as a number: versions are compared numerically, never as strings. */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') => {
    if (oid === 20) return (value: string) => safeNumber(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export const NOTIFY_CHANNEL = 'nixfleet_changes';
/** Serializes schema migrations across instances starting at once. */
const MIGRATION_LOCK = 4_207_001;

export interface PgStoreOptions {
  connectionString: string;
  logger?: Logger;
  /** How often the counter is polled, in case a notification was missed. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Changes kept behind the newest snapshot. */
  changeLogRetention?: number;
}

export class PgStore implements Store {
  readonly pool: pg.Pool;
  private readonly logger: Logger;
  private readonly pollIntervalMs: number;
  private readonly retention: number;
  private closed = false;
  private readonly watchers = new Set<() => void>();
  private listener: pg.Client | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private listenerAttempt = 0;
  private seenVersion = 0;

  constructor(private readonly options: PgStoreOptions) {
    this.logger = options.logger ?? silentLogger;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.retention = options.changeLogRetention ?? 10_000;
    this.pool = new pg.Pool({ connectionString: options.connectionString, max: 4, types, connectionTimeoutMillis: 5000 });
    // An idle client dying (the database restarting) must not crash the process.
    this.pool.on('error', (error) => this.logger.warn('postgres pool client error', { error: error.message }));
  }

  async open(initialStateJson: string): Promise<StoredState> {
    try {
      await this.transaction(async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        await client.query('CREATE TABLE IF NOT EXISTS nixfleet_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
        const applied = new Set((await client.query<{ version: number }>('SELECT version FROM nixfleet_migrations')).rows.map((r) => r.version));
        for (const migration of PG_MIGRATIONS) {
          if (applied.has(migration.version)) continue;
          await client.query(migration.sql);
          await client.query('INSERT INTO nixfleet_migrations (version) VALUES ($1)', [migration.version]);
        }
        // The first instance mints the epoch; the others find it.
        const created = await client.query(
          'INSERT INTO store_meta (id, epoch, version, created_at) VALUES (1, $1, 0, now()) ON CONFLICT (id) DO NOTHING',
          [randomBytes(8).toString('hex')],
        );
        if (created.rowCount === 1) await client.query('INSERT INTO snapshots (version, state) VALUES (0, $1)', [initialStateJson]);
      });
    } catch (error) {
      throw new StoreError('store_unreadable', `cannot open the PostgreSQL store: ${(error as Error).message}`, { cause: error });
    }
    const meta = (await this.pool.query<{ epoch: string; version: number }>('SELECT epoch, version FROM store_meta WHERE id = 1')).rows[0];
    const snapshot = (await this.pool.query<{ version: number; state: string }>('SELECT version, state FROM snapshots ORDER BY version DESC LIMIT 1')).rows[0];
    if (!meta || !snapshot) throw new StoreError('store_corrupt', 'the PostgreSQL store has no meta row or no snapshot');
    const changes = await this.readChanges(snapshot.version);
    const last = changes.at(-1)?.version ?? snapshot.version;
    if (last < meta.version) throw new StoreError('store_corrupt', `version counter is ${meta.version} but the change log ends at ${last}`);
    this.seenVersion = last;
    return { epoch: meta.epoch, version: last, snapshot: { version: snapshot.version, stateJson: snapshot.state }, changes };
  }

  async commit(records: readonly ChangeRecord[]): Promise<void> {
    if (records.length === 0) return;
    const first = records[0]!.version;
    const last = records[records.length - 1]!.version;
    try {
      await this.transaction(async (client) => {
        const current = (await client.query<{ version: number }>('SELECT version FROM store_meta WHERE id = 1 FOR UPDATE')).rows[0]!.version;
        if (current !== first - 1) throw new StoreError('store_conflict', `another instance committed up to version ${current}; expected ${first - 1}`);
        await client.query('INSERT INTO changes (version, change) SELECT * FROM unnest($1::bigint[], $2::text[])', [records.map((r) => r.version), records.map((r) => r.json ?? JSON.stringify(r.change))]);
        const output = records.filter((r): r is ChangeRecord & { change: Extract<Change, { type: 'command_progress' }> } => r.change.type === 'command_progress');
        if (output.length > 0) {
          await client.query('INSERT INTO command_output (command_id, version, chunk) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])', [
            output.map((r) => r.change.id),
            output.map((r) => r.version),
            output.map((r) => r.change.output),
          ]);
        }
        await client.query('UPDATE store_meta SET version = $1 WHERE id = 1', [last]);
        // Only the version travels: the payload limit of NOTIFY never matters, and listeners
        // read the change log, which is the truth.
        await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, String(last)]);
      });
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError('store_commit_failed', `commit of versions ${first}..${last} failed: ${(error as Error).message}`, { cause: error });
    }
    this.seenVersion = Math.max(this.seenVersion, last);
  }

  async readChanges(afterVersion: number): Promise<ChangeRecord[]> {
    const rows = (await this.pool.query<{ version: number; change: string }>('SELECT version, change FROM changes WHERE version > $1 ORDER BY version', [afterVersion])).rows;
    checkContinuous(rows, afterVersion, 'the PostgreSQL store');
    return rows.map((row) => ({ version: row.version, change: JSON.parse(row.change) as Change }));
  }

  async saveSnapshot(version: number, stateJson: string): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('INSERT INTO snapshots (version, state) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING', [version, stateJson]);
      await client.query('DELETE FROM snapshots WHERE version < $1', [version]);
      await client.query('DELETE FROM changes WHERE version <= $1', [version - this.retention]);
    });
  }

  async readCommandOutput(commandId: string, afterVersion: number, maxChunks: number): Promise<OutputChunk[]> {
    return (await this.pool.query<OutputChunk>('SELECT version, chunk FROM command_output WHERE command_id = $1 AND version > $2 ORDER BY version LIMIT $3', [commandId, afterVersion, maxChunks])).rows;
  }

  async commandOutputBytes(commandIds: readonly string[]): Promise<Map<string, number>> {
    const rows = (await this.pool.query<{ command_id: string; bytes: number }>(
      'SELECT command_id, sum(octet_length(chunk))::bigint AS bytes FROM command_output WHERE command_id = ANY($1::text[]) GROUP BY command_id',
      [commandIds],
    )).rows;
    return new Map(rows.map((row) => [row.command_id, row.bytes]));
  }

  watch(onCommit: () => void): () => void {
    // One listener and one poll serve every watcher; the unsubscribe removes exactly this one.
    const watcher = () => onCommit();
    this.watchers.add(watcher);
    if (this.watchers.size === 1) {
      this.startListener();
      // The poll covers what LISTEN cannot promise: notifications lost while disconnected, and a
      // listener that died without an error event.
      this.pollTimer = setInterval(() => void this.poll(), this.pollIntervalMs);
      this.pollTimer.unref();
    }
    return () => {
      if (!this.watchers.delete(watcher) || this.watchers.size > 0) return;
      if (this.pollTimer) clearInterval(this.pollTimer);
      this.pollTimer = null;
      void this.stopListener();
    };
  }

  /** Watchers now (for tests: no poll timer or listener outlives the last one). */
  get watching(): { watchers: number; polling: boolean; listening: boolean } {
    return { watchers: this.watchers.size, polling: this.pollTimer !== null, listening: this.listener !== null };
  }

  private notifyWatchers(): void {
    if (this.closed) return;
    for (const watcher of this.watchers) watcher();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.stopListener();
    await this.pool.end();
  }

  /** The process id of the LISTEN connection (for tests that terminate it from the database). */
  get listenerPid(): number | null {
    return (this.listener as unknown as { processID?: number } | null)?.processID ?? null;
  }

  private async poll(): Promise<void> {
    try {
      const version = (await this.pool.query<{ version: number }>('SELECT version FROM store_meta WHERE id = 1')).rows[0]?.version ?? 0;
      if (version > this.seenVersion) {
        this.seenVersion = version;
        this.notifyWatchers();
      }
    } catch (error) {
      this.logger.debug('postgres poll failed', { error: (error as Error).message });
    }
  }

  private startListener(): void {
    if (this.closed || this.listener) return;
    const client = new pg.Client({ connectionString: this.options.connectionString, types });
    this.listener = client;
    const lost = (reason: string) => {
      if (this.listener !== client) return;
      this.listener = null;
      client.removeAllListeners();
      client.on('error', () => {});
      void client.end().catch(() => {});
      if (this.closed || this.watchers.size === 0) return;
      // Full jitter, capped: a database restart must not see every instance at the same instant.
      const delay = Math.random() * Math.min(10_000, 250 * 2 ** this.listenerAttempt++);
      this.logger.warn('postgres listener lost; reconnecting', { reason, delayMs: Math.round(delay) });
      this.reconnectTimer = setTimeout(() => this.startListener(), delay);
      this.reconnectTimer.unref();
    };
    client.on('error', (error) => lost(error.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', () => this.notifyWatchers());
    client
      .connect()
      .then(() => client.query(`LISTEN ${NOTIFY_CHANNEL}`))
      .then(() => {
        this.listenerAttempt = 0;
        // Whatever was committed while we were not listening is read now.
        this.notifyWatchers();
      })
      .catch((error: Error) => lost(error.message));
  }

  private async stopListener(): Promise<void> {
    const client = this.listener;
    this.listener = null;
    if (!client) return;
    client.removeAllListeners();
    client.on('error', () => {});
    await client.end().catch(() => {});
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}

function safeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new StoreError('store_corrupt', `BIGINT ${value} is beyond 2^53`);
  return n;
}
