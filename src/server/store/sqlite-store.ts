// The embedded store: one SQLite file in WAL mode (better-sqlite3, synchronous API). Holds the
// version counter row, the change log, the newest snapshot and command output. The database is
// opened in EXCLUSIVE locking mode, so a second server on the same data directory is refused
// instead of interleaving versions; the OS releases the lock when the process dies.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Change } from '../../protocol/schema.js';
import type { SqliteSynchronous } from '../config.js';
import { MIGRATIONS, SCHEMA_VERSION } from './sqlite-schema.js';
import { checkContinuous, StoreError, type ChangeRecord, type OutputChunk, type Store, type StoredState } from './store.js';

export const DATABASE_FILE = 'nixfleet.db';

export interface SqliteStoreOptions {
  dataDir: string;
  synchronous?: SqliteSynchronous;
  /** Changes kept behind the newest snapshot (for inspection and future replay). */
  changeLogRetention?: number;
}

export class SqliteStore implements Store {
  readonly path: string;
  private db: Database.Database | null = null;
  private version = 0;
  private readonly synchronous: SqliteSynchronous;
  private readonly retention: number;
  private insertChange!: Database.Statement<[number, string]>;
  private insertOutput!: Database.Statement<[string, number, string]>;
  private setVersion!: Database.Statement<[number]>;
  private commitTxn!: Database.Transaction<(records: readonly ChangeRecord[]) => void>;

  constructor(options: SqliteStoreOptions) {
    this.path = join(options.dataDir, DATABASE_FILE);
    this.synchronous = options.synchronous ?? 'FULL';
    this.retention = options.changeLogRetention ?? 10_000;
    mkdirSync(options.dataDir, { recursive: true });
  }

  async open(initialStateJson: string): Promise<StoredState> {
    const existed = existsSync(this.path) && statSync(this.path).size > 0;
    let db: Database.Database;
    try {
      db = new Database(this.path);
    } catch (error) {
      throw new StoreError('store_unreadable', `cannot open ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      this.configure(db);
      const loaded = this.readOrCreate(db, existed, initialStateJson);
      this.db = db;
      this.prepare(db);
      this.version = loaded.version;
      return loaded;
    } catch (error) {
      db.close();
      if (error instanceof StoreError) throw error;
      const message = (error as Error).message;
      if (/locked|busy/i.test(message)) {
        throw new StoreError('store_locked', `${this.path} is in use by another process (${message}); stop it or use another NIXFLEET_DATA_DIR`, { cause: error });
      }
      throw new StoreError('store_unreadable', `cannot read ${this.path}: ${message}. The file was left untouched; move it away to start a new store.`, { cause: error });
    }
  }

  private configure(db: Database.Database): void {
    db.pragma('busy_timeout = 1000');
    db.pragma('foreign_keys = ON');
    // EXCLUSIVE before WAL: WAL then keeps its index in heap memory, and the first write takes a
    // lock that lasts as long as this connection.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.synchronous}`);
    // Take the exclusive lock now, so a second process fails at start, not at its first write.
    db.exec('BEGIN IMMEDIATE; COMMIT;');
  }

  private readOrCreate(db: Database.Database, existed: boolean, initialStateJson: string): StoredState {
    const tables = db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`).all().map((row) => row.name);
    if (tables.length === 0) {
      if (existed) {
        // A non-empty file with no tables is not something we created; refuse to write over it.
        throw new StoreError('store_unreadable', `${this.path} is an SQLite database without tables, not a NixFleet store; move it away to start a new store`);
      }
      return this.create(db, initialStateJson);
    }
    if (!tables.includes('store_meta')) {
      throw new StoreError('store_unreadable', `${this.path} is not a NixFleet store (no store_meta table); move it away or point NIXFLEET_DATA_DIR elsewhere`);
    }
    return this.load(db);
  }

  private create(db: Database.Database, initialStateJson: string): StoredState {
    const epoch = randomBytes(8).toString('hex');
    db.transaction(() => {
      for (const migration of MIGRATIONS) db.exec(migration.sql);
      db.prepare('INSERT INTO store_meta (id, schema_version, epoch, version, created_at) VALUES (1, ?, ?, 0, ?)').run(SCHEMA_VERSION, epoch, new Date().toISOString());
      db.prepare('INSERT INTO snapshots (version, state) VALUES (0, ?)').run(initialStateJson);
    }).immediate();
    return { epoch, version: 0, snapshot: { version: 0, stateJson: initialStateJson }, changes: [] };
  }

  private load(db: Database.Database): StoredState {
    const meta = db.prepare<[], { schema_version: number; epoch: string; version: number }>('SELECT schema_version, epoch, version FROM store_meta WHERE id = 1').get();
    if (!meta) throw new StoreError('store_corrupt', `${this.path}: store_meta has no row`);
    if (meta.schema_version > SCHEMA_VERSION) {
      throw new StoreError('store_unreadable', `${this.path} has schema version ${meta.schema_version}, written by a newer server; this one reads up to ${SCHEMA_VERSION}`);
    }
    if (meta.schema_version < SCHEMA_VERSION) this.migrate(db, meta.schema_version);
    const snapshot = db.prepare<[], { version: number; state: string }>('SELECT version, state FROM snapshots ORDER BY version DESC LIMIT 1').get();
    if (!snapshot) throw new StoreError('store_corrupt', `${this.path} has no snapshot`);
    const changes = this.changesAfter(db, snapshot.version);
    const last = changes.at(-1)?.version ?? snapshot.version;
    if (last !== meta.version) {
      throw new StoreError('store_corrupt', `${this.path}: version counter is ${meta.version} but the change log ends at ${last}`);
    }
    return { epoch: meta.epoch, version: meta.version, snapshot: { version: snapshot.version, stateJson: snapshot.state }, changes };
  }

  /** Brings an older store up to date; all or nothing. */
  private migrate(db: Database.Database, from: number): void {
    db.transaction(() => {
      for (const migration of MIGRATIONS) if (migration.version > from) db.exec(migration.sql);
      db.prepare('UPDATE store_meta SET schema_version = ? WHERE id = 1').run(SCHEMA_VERSION);
    }).immediate();
  }

  /** The open connection, for stores that share this database (access control). */
  get database(): Database.Database {
    return this.requireOpen();
  }

  private prepare(db: Database.Database): void {
    this.insertChange = db.prepare('INSERT INTO changes (version, change) VALUES (?, ?)');
    this.insertOutput = db.prepare('INSERT INTO command_output (command_id, version, chunk) VALUES (?, ?, ?)');
    this.setVersion = db.prepare('UPDATE store_meta SET version = ? WHERE id = 1');
    this.commitTxn = db.transaction((records: readonly ChangeRecord[]) => {
      for (const { version, change, json } of records) {
        this.insertChange.run(version, json ?? JSON.stringify(change));
        if (change.type === 'command_progress') this.insertOutput.run(change.id, version, change.output);
      }
      this.setVersion.run(records[records.length - 1]!.version);
    });
  }

  async commit(records: readonly ChangeRecord[]): Promise<void> {
    this.requireOpen();
    if (records.length === 0) return;
    records.forEach((record, i) => {
      if (record.version !== this.version + 1 + i) {
        throw new StoreError('store_commit_failed', `version ${record.version} does not continue the counter at ${this.version + i}`);
      }
    });
    try {
      this.commitTxn.immediate(records);
    } catch (error) {
      throw new StoreError('store_commit_failed', `commit of versions ${records[0]!.version}..${records[records.length - 1]!.version} failed: ${(error as Error).message}`, { cause: error });
    }
    this.version = records[records.length - 1]!.version;
  }

  async readChanges(afterVersion: number): Promise<ChangeRecord[]> {
    return this.changesAfter(this.requireOpen(), afterVersion);
  }

  private changesAfter(db: Database.Database, afterVersion: number): ChangeRecord[] {
    const records = db
      .prepare<[number], { version: number; change: string }>('SELECT version, change FROM changes WHERE version > ? ORDER BY version')
      .all(afterVersion)
      .map((row) => ({ version: row.version, change: JSON.parse(row.change) as Change }));
    checkContinuous(records, afterVersion, this.path);
    return records;
  }

  async saveSnapshot(version: number, stateJson: string): Promise<void> {
    const db = this.requireOpen();
    db.transaction(() => {
      db.prepare('INSERT OR REPLACE INTO snapshots (version, state) VALUES (?, ?)').run(version, stateJson);
      db.prepare('DELETE FROM snapshots WHERE version < ?').run(version);
      db.prepare('DELETE FROM changes WHERE version <= ?').run(version - this.retention);
    }).immediate();
  }

  async readCommandOutput(commandId: string, afterVersion: number, maxChunks: number): Promise<OutputChunk[]> {
    return this.requireOpen()
      .prepare<[string, number, number], OutputChunk>('SELECT version, chunk FROM command_output WHERE command_id = ? AND version > ? ORDER BY version LIMIT ?')
      .all(commandId, afterVersion, maxChunks);
  }

  async commandOutputBytes(commandIds: readonly string[]): Promise<Map<string, number>> {
    const rows = this.requireOpen()
      .prepare<[string], { command_id: string; bytes: number }>(
        'SELECT command_id, sum(length(CAST(chunk AS BLOB))) AS bytes FROM command_output WHERE command_id IN (SELECT value FROM json_each(?)) GROUP BY command_id',
      )
      .all(JSON.stringify(commandIds));
    return new Map(rows.map((row) => [row.command_id, row.bytes]));
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    db?.close();
  }

  private requireOpen(): Database.Database {
    if (!this.db) throw new StoreError('store_closed', 'the store is closed');
    return this.db;
  }
}
