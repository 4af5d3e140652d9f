// The AuthStore in the sync store's SQLite file (tables of migration 2 in sqlite-schema.ts).
// Single process: what AuthService holds in memory is the truth, written through here.
import type { SqliteStore } from '../store/sqlite-store.js';
import type { AuthStore, SessionRecord, TokenRecord, UserRecord } from './auth-store.js';
import type { TokenRole, UserRole } from './roles.js';

interface UserRow { name: string; role: UserRole; password_hash: string; totp_secret: string | null; totp_last_step: number | null; created_at: string }
interface SessionRow { id_hash: string; user_name: string; csrf_token: string; created_at: number; last_seen_at: number }
interface TokenRow { id: string; name: string; role: TokenRole; host_id: string | null; secret_hash: string; created_by: string | null; created_at: string; revoked_at: string | null }

export class SqliteAuthStore implements AuthStore {
  readonly shared = false;
  /** Reads the store's database when used: the store opens it after this is made. */
  constructor(private readonly store: SqliteStore) {}

  private get db() {
    return this.store.database;
  }

  async claimTotpStep(name: string, step: number) {
    const result = this.db.prepare('UPDATE users SET totp_last_step = ? WHERE name = ? AND (totp_last_step IS NULL OR totp_last_step < ?)').run(step, name, step);
    return result.changes === 1;
  }

  async loadAll() {
    const users = this.db.prepare<[], UserRow>('SELECT * FROM users ORDER BY created_at').all().map((r) => ({
      name: r.name, role: r.role, passwordHash: r.password_hash, totpSecret: r.totp_secret, totpLastStep: r.totp_last_step, createdAt: r.created_at,
    }));
    const sessions = this.db.prepare<[], SessionRow>('SELECT * FROM sessions').all().map((r) => ({
      idHash: r.id_hash, userName: r.user_name, csrfToken: r.csrf_token, createdAt: r.created_at, lastSeenAt: r.last_seen_at,
    }));
    const tokens = this.db.prepare<[], TokenRow>('SELECT * FROM api_tokens ORDER BY created_at').all().map((r) => ({
      id: r.id, name: r.name, role: r.role, hostId: r.host_id, secretHash: r.secret_hash, createdBy: r.created_by, createdAt: r.created_at, revokedAt: r.revoked_at,
    }));
    return { users, sessions, tokens };
  }

  async putUser(u: UserRecord) {
    this.db
      .prepare(`INSERT INTO users (name, role, password_hash, totp_secret, totp_last_step, created_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, totp_secret = excluded.totp_secret,
          totp_last_step = CASE WHEN users.totp_secret IS excluded.totp_secret AND (excluded.totp_last_step IS NULL OR users.totp_last_step > excluded.totp_last_step)
            THEN users.totp_last_step ELSE excluded.totp_last_step END`)
      .run(u.name, u.role, u.passwordHash, u.totpSecret, u.totpLastStep, u.createdAt);
  }

  async deleteUser(name: string) {
    this.db.prepare('DELETE FROM users WHERE name = ?').run(name);
  }

  async putSession(s: SessionRecord) {
    this.db.prepare('INSERT INTO sessions (id_hash, user_name, csrf_token, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)').run(s.idHash, s.userName, s.csrfToken, s.createdAt, s.lastSeenAt);
  }

  async touchSession(idHash: string, lastSeenAt: number) {
    this.db.prepare('UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE id_hash = ?').run(lastSeenAt, idHash);
  }

  async deleteSession(idHash: string) {
    this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(idHash);
  }

  async putToken(t: TokenRecord) {
    this.db
      .prepare(`INSERT INTO api_tokens (id, name, role, host_id, secret_hash, created_by, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at`)
      .run(t.id, t.name, t.role, t.hostId, t.secretHash, t.createdBy, t.createdAt, t.revokedAt);
  }
}
