// The persistence contract of users, sessions and API tokens (AuthService keeps them in memory,
// written through to an AuthStore). Secrets are never stored: passwords as scrypt hashes, session
// ids and token secrets as SHA-256 hashes (they are 256-bit random, so a fast hash is enough).
// SQLite and PostgreSQL implement it; test/auth-store-contract.test.ts runs both.
import type { TokenRole, UserRole } from './roles.js';

export interface UserRecord {
  name: string;
  role: UserRole;
  passwordHash: string;
  totpSecret: string | null;
  /** The TOTP time step last accepted, so a code cannot be used twice. */
  totpLastStep: number | null;
  createdAt: string;
}

export interface SessionRecord {
  idHash: string;
  userName: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

export interface TokenRecord {
  id: string;
  name: string;
  role: TokenRole;
  hostId: string | null;
  secretHash: string;
  createdBy: string | null;
  createdAt: string;
  revokedAt: string | null;
}

export interface AuthStore {
  /** True when other server instances share this store: the service then re-reads it. */
  readonly shared: boolean;
  loadAll(): Promise<{ users: UserRecord[]; sessions: SessionRecord[]; tokens: TokenRecord[] }>;
  /**
   * Inserts or updates a user, found by name ignoring case. `totpLastStep` never moves back for
   * the same secret (another instance may have used a later step meanwhile); a new or removed
   * secret starts over.
   */
  putUser(user: UserRecord): Promise<void>;
  /** Removes a user (found ignoring case) and their sessions. */
  deleteUser(name: string): Promise<void>;
  putSession(session: SessionRecord): Promise<void>;
  /** Records a session's last use; never moves it back (instances touch it in any order). */
  touchSession(idHash: string, lastSeenAt: number): Promise<void>;
  deleteSession(idHash: string): Promise<void>;
  /** Inserts a token, or records its revocation (nothing else of a token ever changes). */
  putToken(token: TokenRecord): Promise<void>;
  /**
   * Marks a TOTP step as used for `name` (ignoring case) unless that step or a later one already was: true when
   * this call claimed it. Atomic in the store, so two instances cannot both accept one code.
   */
  claimTotpStep(name: string, step: number): Promise<boolean>;
}

