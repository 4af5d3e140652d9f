// The PostgreSQL schema as ordered migrations, applied at start under an advisory lock so that
// several instances starting at once apply each exactly once.

export const PG_MIGRATIONS: ReadonlyArray<{ version: number; description: string; sql: string }> = [
  {
    version: 1,
    description: 'sync state: version counter row, change log, snapshots, command output',
    sql: `
      CREATE TABLE store_meta (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        epoch      TEXT        NOT NULL,
        version    BIGINT      NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE changes (
        version BIGINT PRIMARY KEY,
        change  TEXT   NOT NULL
      );
      CREATE TABLE snapshots (
        version BIGINT PRIMARY KEY,
        state   TEXT   NOT NULL
      );
      CREATE TABLE command_output (
        command_id TEXT   NOT NULL,
        version    BIGINT NOT NULL,
        chunk      TEXT   NOT NULL,
        PRIMARY KEY (command_id, version)
      );
    `,
  },
  {
    version: 2,
    description: 'access control: users, sessions, API tokens',
    sql: `
      CREATE TABLE users (
        name           TEXT PRIMARY KEY,
        name_key       TEXT NOT NULL UNIQUE,
        role           TEXT NOT NULL,
        password_hash  TEXT NOT NULL,
        totp_secret    TEXT,
        totp_last_step BIGINT,
        created_at     TEXT NOT NULL
      );
      CREATE TABLE sessions (
        id_hash      TEXT PRIMARY KEY,
        user_name    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf_token   TEXT NOT NULL,
        created_at   BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL
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
  {
    version: 3,
    description: 'agent sessions: which instance holds each host, until when',
    sql: `
      CREATE TABLE agent_leases (
        host_id    TEXT PRIMARY KEY,
        instance   TEXT        NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
      );
    `,
  },
];
