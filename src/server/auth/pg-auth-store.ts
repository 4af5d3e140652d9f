// Users, sessions and API tokens in PostgreSQL, shared by every instance (tables from
// migration 2 of pg-schema.ts). Same contract as SqliteAuthStore; `shared` tells AuthService
// to re-read it, since another instance may log someone in or out at any time.
import type pg from 'pg';
import type { AuthStore, SessionRecord, TokenRecord, UserRecord } from './auth-store.js';

export class PgAuthStore implements AuthStore {
  readonly shared = true;
  constructor(private readonly pool: pg.Pool) {}

  async loadAll() {
    const [users, sessions, tokens] = await Promise.all([
      this.pool.query('SELECT * FROM users ORDER BY created_at'),
      this.pool.query('SELECT * FROM sessions'),
      this.pool.query('SELECT * FROM api_tokens ORDER BY created_at'),
    ]);
    return {
      users: users.rows.map((r): UserRecord => ({ name: r.name, role: r.role, passwordHash: r.password_hash, totpSecret: r.totp_secret, totpLastStep: r.totp_last_step, createdAt: r.created_at })),
      sessions: sessions.rows.map((r): SessionRecord => ({ idHash: r.id_hash, userName: r.user_name, csrfToken: r.csrf_token, createdAt: r.created_at, lastSeenAt: r.last_seen_at })),
      tokens: tokens.rows.map((r): TokenRecord => ({ id: r.id, name: r.name, role: r.role, hostId: r.host_id, secretHash: r.secret_hash, createdBy: r.created_by, createdAt: r.created_at, revokedAt: r.revoked_at })),
    };
  }

  async putUser(u: UserRecord) {
    await this.pool.query(
      `INSERT INTO users (name, name_key, role, password_hash, totp_secret, totp_last_step, created_at) VALUES ($1, lower($1), $2, $3, $4, $5, $6)
       ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, totp_secret = excluded.totp_secret,
         totp_last_step = CASE WHEN users.totp_secret IS NOT DISTINCT FROM excluded.totp_secret THEN GREATEST(users.totp_last_step, excluded.totp_last_step) ELSE excluded.totp_last_step END`,
      [u.name, u.role, u.passwordHash, u.totpSecret, u.totpLastStep, u.createdAt],
    );
  }

  async deleteUser(name: string) {
    await this.pool.query('DELETE FROM users WHERE name_key = lower($1)', [name]);
  }

  async putSession(s: SessionRecord) {
    await this.pool.query('INSERT INTO sessions (id_hash, user_name, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)', [s.idHash, s.userName, s.csrfToken, s.createdAt, s.lastSeenAt]);
  }

  async touchSession(idHash: string, lastSeenAt: number) {
    await this.pool.query('UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $1) WHERE id_hash = $2', [lastSeenAt, idHash]);
  }

  async deleteSession(idHash: string) {
    await this.pool.query('DELETE FROM sessions WHERE id_hash = $1', [idHash]);
  }

  async putToken(t: TokenRecord) {
    await this.pool.query(
      `INSERT INTO api_tokens (id, name, role, host_id, secret_hash, created_by, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at`,
      [t.id, t.name, t.role, t.hostId, t.secretHash, t.createdBy, t.createdAt, t.revokedAt],
    );
  }

  async claimTotpStep(name: string, step: number) {
    const result = await this.pool.query('UPDATE users SET totp_last_step = $1 WHERE name_key = lower($2) AND (totp_last_step IS NULL OR totp_last_step < $1)', [step, name]);
    return result.rowCount === 1;
  }
}
