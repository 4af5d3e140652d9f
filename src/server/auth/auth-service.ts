// Identities and credentials: users (scrypt passwords, optional TOTP), sessions (random ids,
// stored hashed, idle and absolute expiry) and API tokens (shown once, stored hashed,
// revocable). Keeps everything in memory, written through to the AuthStore, so checking a
// request or an open socket costs no I/O. Listeners hear when a credential stops being valid.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthStore, SessionRecord, TokenRecord, UserRecord } from './auth-store.js';
import { LoginLimiter, type LoginAttempt, type LoginRefusal } from './login-limiter.js';
import { checkPasswordStrength, hashPassword, KdfLimiter, verifyPassword } from './passwords.js';
import { USER_ROLES, TOKEN_ROLES, type Principal, type TokenRole, type UserRole } from './roles.js';
import { generateTotpSecret, totpUri, verifyTotp } from './totp.js';
import { DISPLAY_NAME_RULE, isDisplayName, isUserName, USER_NAME_RULE } from '../../protocol/names.js';

export type AuthErrorCode =
  | 'invalid_credentials'
  | 'reauthentication_failed'
  | 'last_admin'
  | 'totp_required'
  | 'totp_reused'
  | 'rate_limited'
  | 'kdf_busy'
  | 'weak_password'
  | 'invalid'
  | 'exists'
  | 'not_found';

export class AuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface AuthServiceOptions {
  /** Absolute session lifetime (NIXFLEET_SESSION_DURATION). */
  sessionDurationMs: number;
  /** A session unused for this long ends. */
  sessionIdleMs: number;
  now?: () => number;
  loginLimiter?: LoginLimiter;
  kdf?: KdfLimiter;
}

export interface LoginResult {
  /** The raw session id: goes into the cookie, never stored. */
  sessionId: string;
  csrfToken: string;
  user: { name: string; role: UserRole };
}

const TOKEN_FORMAT = /^nft_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
/** Persist a session's last use at most this often; memory is always current. */
const TOUCH_EVERY_MS = 60_000;

export class AuthService {
  private readonly users = new Map<string, UserRecord>();
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly revokeListeners = new Set<() => void>();
  private readonly now: () => number;
  private readonly limiter: LoginLimiter;
  private readonly kdf: KdfLimiter;
  /** Verified against when the user does not exist, so timing does not tell which names do. */
  private dummyHash = '';
  private syncTimer: NodeJS.Timeout | null = null;
  private pendingReload: Promise<void> | null = null;
  /** The tail of the queue of changes that could remove an admin (see keepingAnAdmin). */
  private adminChanges: Promise<void> = Promise.resolve();
  /** Counters for tests and metrics: `passwordChecks` counts passwords actually hashed at login. */
  readonly stats = { passwordChecks: 0 };

  private constructor(
    private readonly store: AuthStore,
    private readonly options: AuthServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.limiter = options.loginLimiter ?? new LoginLimiter({ now: this.now });
    this.kdf = options.kdf ?? new KdfLimiter({ concurrency: 2, maxQueue: 64 });
  }

  static async open(store: AuthStore, options: AuthServiceOptions): Promise<AuthService> {
    const service = new AuthService(store, options);
    // Made once at start, outside the login limiter, so it can never be a rejected promise.
    service.dummyHash = await hashPassword(randomBytes(16).toString('hex'), new KdfLimiter({ concurrency: 1, maxQueue: 1 }));
    await service.reload();
    if (store.shared) {
      // Other instances log users in and out: re-read the store every second, so a logout or
      // revocation anywhere closes this instance's sockets within about a second too.
      service.syncTimer = setInterval(() => void service.reload().catch(() => {}), 1000);
      service.syncTimer.unref();
    }
    return service;
  }

  /** Stops re-reading a shared store. */
  close(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = null;
  }

  /**
   * The principal of a raw session id. On a shared store, an id this instance does not know
   * yet (a login on another instance) is looked up once before it is refused.
   */
  async resolveSession(rawSessionId: string): Promise<Principal | null> {
    const known = this.sessionPrincipal(rawSessionId);
    if (known || !this.store.shared) return known;
    await this.reloadSoon();
    return this.sessionPrincipal(rawSessionId);
  }

  /** The principal of a bearer token; on a shared store, looked up once when unknown. */
  async resolveToken(raw: string): Promise<Principal | null> {
    const known = this.tokenPrincipal(raw);
    if (known || !this.store.shared) return known;
    await this.reloadSoon();
    return this.tokenPrincipal(raw);
  }

  /** Re-reads everything; tells the listeners when a credential disappeared. */
  private async reload(): Promise<void> {
    const { users, sessions, tokens } = await this.store.loadAll();
    let lost = false;
    const nextUsers = new Map(users.map((u) => [u.name.toLowerCase(), u] as const));
    for (const [key, user] of this.users) {
      const next = nextUsers.get(key);
      if (!next) lost = true;
      // A TOTP step used here but not yet seen in the store stays used.
      else if ((user.totpLastStep ?? -1) > (next.totpLastStep ?? -1)) nextUsers.set(key, { ...next, totpLastStep: user.totpLastStep });
    }
    const nextSessions = new Map(sessions.map((s) => [s.idHash, s] as const));
    for (const [id, session] of this.sessions) {
      const next = nextSessions.get(id);
      if (!next) lost = true;
      else next.lastSeenAt = Math.max(next.lastSeenAt, session.lastSeenAt);
    }
    const nextTokens = new Map(tokens.map((t) => [t.id, t] as const));
    for (const [id, token] of this.tokens) {
      const next = nextTokens.get(id);
      if (!next || (token.revokedAt === null && next.revokedAt !== null)) lost = true;
    }
    this.replace(this.users, nextUsers);
    this.replace(this.sessions, nextSessions);
    this.replace(this.tokens, nextTokens);
    if (lost) this.revoked();
  }

  /** Coalesces the lookups of unknown credentials into one reload at a time. */
  private reloadSoon(): Promise<void> {
    this.pendingReload ??= this.reload()
      .catch(() => {})
      .finally(() => {
        this.pendingReload = null;
      });
    return this.pendingReload;
  }

  private replace<K, V>(target: Map<K, V>, source: Map<K, V>): void {
    target.clear();
    for (const [key, value] of source) target.set(key, value);
  }

  /**
   * With no user at all, creates `admin` with `password`, or with a random one which is
   * returned (for the caller to show once). Null when users exist or a password was given.
   */
  async ensureAdmin(password: string | undefined, generate: () => string): Promise<string | null> {
    if (this.users.size > 0) return null;
    const chosen = password ?? generate();
    await this.addUser('admin', 'admin', chosen);
    return password === undefined ? chosen : null;
  }

  // ── users ────────────────────────────────────────────────────────────────────────────────

  listUsers(): Array<{ name: string; role: UserRole; totp: boolean; createdAt: string }> {
    return [...this.users.values()].map((u) => ({ name: u.name, role: u.role, totp: u.totpSecret !== null, createdAt: u.createdAt }));
  }

  async addUser(name: string, role: UserRole, password: string): Promise<void> {
    if (!isUserName(name)) throw new AuthError('invalid', `user name ${USER_NAME_RULE}`);
    if (!USER_ROLES.includes(role)) throw new AuthError('invalid', `role must be one of ${USER_ROLES.join(', ')}`);
    if (this.users.has(name.toLowerCase())) throw new AuthError('exists', `user '${name}' already exists`);
    const weak = checkPasswordStrength(password);
    if (weak) throw new AuthError('weak_password', weak);
    const user: UserRecord = { name, role, passwordHash: await this.hash(password), totpSecret: null, totpLastStep: null, createdAt: new Date(this.now()).toISOString() };
    await this.store.putUser(user);
    this.users.set(name.toLowerCase(), user);
  }

  async removeUser(name: string): Promise<void> {
    await this.keepingAnAdmin(async () => {
      const user = this.requireUser(name);
      if (user.role === 'admin') this.refuseLastAdmin(`remove '${user.name}'`);
      await this.store.deleteUser(name); // its sessions go with it (ON DELETE CASCADE)
      this.users.delete(name.toLowerCase());
      this.endSessionsOf(name);
    });
  }

  async setRole(name: string, role: UserRole): Promise<void> {
    if (!USER_ROLES.includes(role)) throw new AuthError('invalid', `role must be one of ${USER_ROLES.join(', ')}`);
    await this.keepingAnAdmin(async () => {
      const user = this.requireUser(name);
      if (user.role === 'admin' && role !== 'admin') this.refuseLastAdmin(`make '${user.name}' ${role === 'operator' ? 'an' : 'a'} ${role}`);
      await this.updateUser(user, { role });
      this.endSessionsOf(name); // a role change takes effect on the next login, not in a live session
    });
  }

  /**
   * Checks that the person behind a session is at the keyboard before their credentials change:
   * their password, and, when `code` is asked for, a current code of their second factor (which
   * is then used up). Wrong guesses count as failed logins of that account.
   */
  async reauthenticate(name: string, proof: { password: string; totp?: string | undefined }, address: string, options: { code: boolean }): Promise<void> {
    const account = name.toLowerCase();
    const reservation = this.limiter.reserve(account, address);
    if (!reservation.allowed) throw rateLimited(reservation);
    const known = this.users.get(account);
    const passwordOk = await this.passwordMatches(known, proof.password, reservation.attempt);
    const user = this.users.get(account);
    const codeCheck = options.code && user?.totpSecret ? verifyTotp(user.totpSecret, proof.totp ?? '', this.now(), user.totpLastStep) : null;
    if (!user || !passwordOk || user.passwordHash !== known?.passwordHash || (codeCheck && !codeCheck.ok)) {
      throw new AuthError('reauthentication_failed', options.code ? 'your password or authenticator code is wrong; nothing was changed' : 'your password is wrong; nothing was changed');
    }
    if (codeCheck?.ok) await this.useTotpStep(user, codeCheck.step);
    reservation.attempt.succeeded();
  }

  async setPassword(name: string, password: string): Promise<void> {
    const weak = checkPasswordStrength(password);
    if (weak) throw new AuthError('weak_password', weak);
    await this.updateUser(this.requireUser(name), { passwordHash: await this.hash(password) });
    this.endSessionsOf(name);
  }

  /** Enables TOTP with a new secret; returns it and its otpauth:// URI for an authenticator app. */
  async enableTotp(name: string): Promise<{ secret: string; uri: string }> {
    const user = this.requireUser(name);
    const secret = generateTotpSecret();
    await this.updateUser(user, { totpSecret: secret, totpLastStep: null });
    return { secret, uri: totpUri({ secret, account: user.name, issuer: 'NixFleet' }) };
  }

  hasTotp(name: string): boolean {
    return (this.users.get(name.toLowerCase())?.totpSecret ?? null) !== null;
  }

  async disableTotp(name: string): Promise<void> {
    await this.updateUser(this.requireUser(name), { totpSecret: null, totpLastStep: null });
  }

  // ── sessions ─────────────────────────────────────────────────────────────────────────────

  async login(input: { username: string; password: string; totp?: string | undefined }, address: string): Promise<LoginResult> {
    const account = input.username.toLowerCase();
    const known = this.users.get(account);
    if (known && known.totpSecret !== null && !input.totp) {
      // Answered before the password is looked at, so this answer cannot confirm a guess.
      const gate = this.limiter.check(account, address);
      if (!gate.allowed) throw rateLimited(gate);
      throw new AuthError('totp_required', 'enter the code from your authenticator app');
    }
    // Counted as a failure before the hash starts: a burst of parallel guesses is admitted only
    // up to the limit, however many are waiting in the hash queue.
    const reservation = this.limiter.reserve(account, address);
    if (!reservation.allowed) throw rateLimited(reservation);
    const { attempt } = reservation;
    const passwordOk = await this.passwordMatches(known, input.password, attempt);
    // Read again after the await: a concurrent login may have used a TOTP step meanwhile.
    const user = this.users.get(account);
    const codeCheck = user && user.totpSecret !== null ? verifyTotp(user.totpSecret, input.totp ?? '', this.now(), user.totpLastStep) : null;
    if (!user || !passwordOk || user.passwordHash !== known?.passwordHash || (codeCheck && !codeCheck.ok && codeCheck.reason !== 'reused')) {
      // One answer for a wrong password and a wrong code, so neither confirms the other.
      throw new AuthError('invalid_credentials', user?.totpSecret ? 'wrong user name, password or code' : 'wrong user name or password');
    }
    if (codeCheck) {
      // The password was right and the code is one the user really had: saying it was used
      // already tells an attacker nothing they could not see.
      if (!codeCheck.ok) throw totpReused();
      await this.useTotpStep(user, codeCheck.step);
    }
    attempt.succeeded();
    // Always a fresh id: a session id planted before login (fixation) is never promoted.
    const sessionId = randomBytes(32).toString('base64url');
    const at = this.now();
    const session: SessionRecord = { idHash: sha256(sessionId), userName: user.name, csrfToken: randomBytes(32).toString('base64url'), createdAt: at, lastSeenAt: at };
    await this.store.putSession(session);
    this.sessions.set(session.idHash, session);
    return { sessionId, csrfToken: session.csrfToken, user: { name: user.name, role: user.role } };
  }

  /** The principal of a raw session id, or null if unknown or expired. Counts as use. */
  sessionPrincipal(rawSessionId: string): Principal | null {
    const session = this.sessions.get(sha256(rawSessionId));
    if (!session || !this.sessionAlive(session)) return null;
    const user = this.users.get(session.userName.toLowerCase());
    if (!user) return null;
    const now = this.now();
    if (now - session.lastSeenAt >= TOUCH_EVERY_MS) void this.store.touchSession(session.idHash, now).catch(() => {});
    session.lastSeenAt = now;
    return { kind: 'session', user: user.name, role: user.role, sessionId: session.idHash, csrfToken: session.csrfToken };
  }

  async logout(sessionIdHash: string): Promise<void> {
    if (!this.sessions.delete(sessionIdHash)) return;
    await this.store.deleteSession(sessionIdHash);
    this.revoked();
  }

  /** Whether the credential behind a principal is still valid (for open sockets). */
  stillValid(principal: Principal): boolean {
    if (principal.kind === 'session') {
      const session = this.sessions.get(principal.sessionId);
      return session !== undefined && this.sessionAlive(session) && this.users.has(session.userName.toLowerCase());
    }
    const token = this.tokens.get(principal.tokenId);
    return token !== undefined && token.revokedAt === null;
  }

  /** Marks a socket's session as used, so a dashboard left open does not go idle. */
  keepAlive(principal: Principal): void {
    if (principal.kind !== 'session') return;
    const session = this.sessions.get(principal.sessionId);
    if (session && this.sessionAlive(session)) session.lastSeenAt = this.now();
  }

  /** Deletes expired sessions; returns how many. Run periodically. */
  async sweepExpired(): Promise<number> {
    let removed = 0;
    for (const [id, session] of this.sessions) {
      if (this.sessionAlive(session)) continue;
      this.sessions.delete(id);
      await this.store.deleteSession(id);
      removed++;
    }
    if (removed > 0) this.revoked();
    return removed;
  }

  // ── API tokens ───────────────────────────────────────────────────────────────────────────

  listTokens(): Array<Omit<TokenRecord, 'secretHash'>> {
    return [...this.tokens.values()].map(({ secretHash: _secret, ...rest }) => rest);
  }

  /** Creates a token; the returned `token` is shown this once and cannot be recovered. */
  async createToken(input: { name: string; role: TokenRole; hostId?: string | null }, createdBy: string | null): Promise<{ id: string; token: string }> {
    if (!TOKEN_ROLES.includes(input.role)) throw new AuthError('invalid', `role must be one of ${TOKEN_ROLES.join(', ')}`);
    const hostId = input.hostId ?? null;
    if (input.role === 'agent' && hostId === null) throw new AuthError('invalid', 'an agent token needs host_id: the one host it reports for');
    if (input.role !== 'agent' && hostId !== null) throw new AuthError('invalid', 'host_id scopes agent tokens only; use role "agent"');
    if (!isDisplayName(input.name)) throw new AuthError('invalid', `token name ${DISPLAY_NAME_RULE}`);
    const id = randomBytes(8).toString('hex').slice(0, 12);
    const secret = randomBytes(32).toString('base64url');
    const record: TokenRecord = { id, name: input.name, role: input.role, hostId, secretHash: sha256(secret), createdBy, createdAt: new Date(this.now()).toISOString(), revokedAt: null };
    await this.store.putToken(record);
    this.tokens.set(id, record);
    return { id, token: `nft_${id}_${secret}` };
  }

  async revokeToken(id: string): Promise<void> {
    await this.keepingAnAdmin(async () => {
      const token = this.tokens.get(id);
      if (!token || token.revokedAt !== null) throw new AuthError('not_found', `no active token '${id}'`);
      if (token.role === 'admin') this.refuseLastAdmin(`revoke token '${token.name}'`);
      const revoked = { ...token, revokedAt: new Date(this.now()).toISOString() };
      await this.store.putToken(revoked);
      this.tokens.set(id, revoked);
      this.revoked();
    });
  }

  /**
   * Revokes every agent token bound to `hostId` (the host was removed: its agent must not bring
   * it back by registering again). Answers how many were revoked.
   */
  async revokeAgentTokensOf(hostId: string): Promise<number> {
    const at = new Date(this.now()).toISOString();
    let revoked = 0;
    for (const token of [...this.tokens.values()]) {
      if (token.role !== 'agent' || token.hostId !== hostId || token.revokedAt !== null) continue;
      const ended = { ...token, revokedAt: at };
      await this.store.putToken(ended);
      this.tokens.set(token.id, ended);
      revoked++;
    }
    if (revoked > 0) this.revoked();
    return revoked;
  }

  /** The principal of a bearer token, or null if malformed, unknown or revoked. */
  tokenPrincipal(raw: string): Principal | null {
    const match = TOKEN_FORMAT.exec(raw);
    if (!match) return null;
    const token = this.tokens.get(match[1]!);
    if (!token || token.revokedAt !== null) return null;
    const given = Buffer.from(sha256(match[2]!));
    if (!timingSafeEqual(given, Buffer.from(token.secretHash))) return null;
    return { kind: 'token', tokenId: token.id, name: token.name, role: token.role, hostId: token.hostId };
  }

  /** Called whenever a credential ends, so open sockets can be re-checked at once. */
  onRevoke(listener: () => void): () => void {
    this.revokeListeners.add(listener);
    return () => this.revokeListeners.delete(listener);
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  /**
   * Runs changes that can take an admin away one at a time: two admins demoting each other at
   * once would otherwise both see the other one still there.
   */
  private keepingAnAdmin<T>(change: () => Promise<T>): Promise<T> {
    const run = this.adminChanges.then(change);
    this.adminChanges = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Throws unless some admin (a user, or an active admin token) remains once one is taken away. */
  private refuseLastAdmin(what: string): void {
    const users = [...this.users.values()].filter((u) => u.role === 'admin').length;
    const tokens = [...this.tokens.values()].filter((t) => t.role === 'admin' && t.revokedAt === null).length;
    if (users + tokens <= 1) throw new AuthError('last_admin', `cannot ${what}: it is the last admin, and nobody could manage access after it. Make another admin first.`);
  }

  private sessionAlive(session: SessionRecord): boolean {
    const now = this.now();
    return now - session.createdAt < this.options.sessionDurationMs && now - session.lastSeenAt < this.options.sessionIdleMs;
  }

  private requireUser(name: string): UserRecord {
    const user = this.users.get(name.toLowerCase());
    if (!user) throw new AuthError('not_found', `no user '${name}'`);
    return user;
  }

  private async updateUser(user: UserRecord, fields: Partial<UserRecord>): Promise<void> {
    const updated = { ...user, ...fields };
    await this.store.putUser(updated);
    this.users.set(user.name.toLowerCase(), updated);
  }

  private endSessionsOf(name: string): void {
    for (const [id, session] of this.sessions) {
      if (session.userName.toLowerCase() !== name.toLowerCase()) continue;
      this.sessions.delete(id);
      void this.store.deleteSession(id).catch(() => {});
    }
    this.revoked();
  }

  private revoked(): void {
    for (const listener of this.revokeListeners) listener();
  }

  /**
   * Marks a TOTP step used: in memory in the same step as the caller's check (no await between),
   * then claimed in the store, atomically, against every other instance.
   */
  private async useTotpStep(user: UserRecord, step: number): Promise<void> {
    this.users.set(user.name.toLowerCase(), { ...user, totpLastStep: step });
    if (!(await this.store.claimTotpStep(user.name, step))) throw totpReused();
  }

  /**
   * Checks a password against the user's hash, or a dummy one for an unknown user (so timing
   * does not tell which names exist). A busy KDF gives the attempt back: nothing was evaluated.
   */
  private async passwordMatches(user: UserRecord | undefined, password: string, attempt: LoginAttempt): Promise<boolean> {
    const ok = await verifyPassword(password, user?.passwordHash ?? this.dummyHash, this.kdf).catch((error: { code?: string }) => {
      attempt.withdrawn();
      if (error?.code === 'kdf_busy') throw new AuthError('kdf_busy', 'the server is busy checking passwords; try again in a moment', 1000);
      throw error;
    });
    this.stats.passwordChecks++;
    return ok;
  }

  private hash(password: string): Promise<string> {
    return hashPassword(password, this.kdf).catch((error: { code?: string }) => {
      if (error?.code === 'kdf_busy') throw new AuthError('kdf_busy', 'the server is busy hashing passwords; try again in a moment', 1000);
      throw error;
    });
  }
}

function totpReused(): AuthError {
  return new AuthError('totp_reused', 'this code was already used; wait for the next one');
}

function rateLimited(refusal: LoginRefusal): AuthError {
  return new AuthError('rate_limited', `too many failed logins for this ${refusal.scope}; try again later`, refusal.retryAfterMs);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
