// The SQLite schema as an ordered list of migrations. A new store runs them all; an existing
// one runs those above its `store_meta.schema_version`, in one transaction, at open. A store
// written by a newer server (higher version) is refused rather than guessed at.

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'sync state: version counter, change log, snapshots, command output',
    sql: `
      CREATE TABLE store_meta (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        schema_version INTEGER NOT NULL,
        epoch          TEXT    NOT NULL,
        version        INTEGER NOT NULL,
        created_at     TEXT    NOT NULL
      );
      CREATE TABLE changes (
        version INTEGER PRIMARY KEY,
        change  TEXT    NOT NULL
      );
      CREATE TABLE snapshots (
        version INTEGER PRIMARY KEY,
        state   TEXT    NOT NULL
      );
      CREATE TABLE command_output (
        command_id TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        chunk      TEXT    NOT NULL,
        PRIMARY KEY (command_id, version)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    description: 'access control: users, sessions, API tokens',
    sql: `
      CREATE TABLE users (
        name           TEXT PRIMARY KEY COLLATE NOCASE,
        role           TEXT NOT NULL,
        password_hash  TEXT NOT NULL,
        totp_secret    TEXT,
        totp_last_step INTEGER,
        created_at     TEXT NOT NULL
      );
      CREATE TABLE sessions (
        id_hash      TEXT PRIMARY KEY,
        user_name    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf_token   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
      );
      CREATE TABLE api_tokens (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL,
        host_id      TEXT,
        secret_hash  TEXT NOT NULL,
        created_by   TEXT,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT
      );
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
