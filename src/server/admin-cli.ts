// `npm run admin -- …`: manage users and API tokens in the store of NIXFLEET_DATA_DIR while the
// server is stopped (the SQLite store is locked while it runs; then use the dashboard's admin
// page or the HTTP API), or in the PostgreSQL of NIXFLEET_DATABASE_URL at any time. Secrets are
// printed once and never stored in clear.
import { emptyState, toFullState } from '../protocol/fleet-state.js';
import { AuthError, AuthService } from './auth/auth-service.js';
import { randomPassword } from './auth/passwords.js';
import { TOKEN_ROLES, USER_ROLES, type TokenRole, type UserRole } from './auth/roles.js';
import { configFromEnv, ConfigError } from './config.js';
import { openStores } from './store/open-stores.js';
import { StoreError } from './store/store.js';

const USAGE = `usage: npm run admin -- <command>

  user list
  user add <name> --role viewer|operator|admin     password from NIXFLEET_NEW_PASSWORD, else generated and printed
  user passwd <name>                               password from NIXFLEET_NEW_PASSWORD, else generated and printed
  user role <name> viewer|operator|admin
  user remove <name>
  user totp <name> enable|disable                  enable prints the secret and otpauth:// URI
  token list
  token create <name> --role viewer|operator|admin|agent [--host <host id>]   prints the token once
  token revoke <id>

The store is NIXFLEET_DATA_DIR (default ./data; stop the server first), or the PostgreSQL of
NIXFLEET_DATABASE_URL (servers may keep running).`;

/**
 * Runs one admin command; returns the exit code. Expected failures (bad arguments, a locked or
 * unreadable store, an unknown user) are reported through `err` with exit code 1.
 */
export async function runAdmin(argv: string[], env: Record<string, string | undefined>, out: (line: string) => void, err: (line: string) => void = out): Promise<number> {
  try {
    return await run(argv, env, out);
  } catch (error) {
    if (error instanceof AuthError || error instanceof StoreError || error instanceof ConfigError) {
      const hint = error instanceof StoreError && error.code === 'store_locked' ? '. While the server runs, use the dashboard\'s Access page or /api/users and /api/tokens.' : '';
      err(`nixfleet admin: ${error.message}${hint}`);
      return 1;
    }
    throw error;
  }
}

async function run(argv: string[], env: Record<string, string | undefined>, out: (line: string) => void): Promise<number> {
  const [area, command, ...rest] = argv;
  if (!area || !command || area === 'help' || area === '--help') {
    out(USAGE);
    return area ? 0 : 2;
  }
  const config = configFromEnv(env);
  // PostgreSQL is shared: the CLI works beside running servers, which re-read it every second.
  const { store, authStore } = openStores(config);
  await store.open(JSON.stringify(toFullState(emptyState(config.limits))));
  let cleanup = () => {};
  try {
    const auth = await AuthService.open(authStore, { sessionDurationMs: config.sessionDurationMs, sessionIdleMs: config.sessionIdleMs });
    cleanup = () => auth.close();
    const flag = (name: string) => {
      const i = rest.indexOf(`--${name}`);
      return i === -1 ? undefined : rest[i + 1];
    };
    const positional = rest.filter((arg, i) => !arg.startsWith('--') && !rest[i - 1]?.startsWith('--'));
    const newPassword = () => env.NIXFLEET_NEW_PASSWORD ?? randomPassword();
    const needName = () => positional[0] ?? fail('name the user or token');

    switch (`${area} ${command}`) {
      case 'user list':
        for (const u of auth.listUsers()) out(`${u.name}\t${u.role}\t${u.totp ? 'totp' : 'password'}\t${u.createdAt}`);
        return 0;
      case 'user add': {
        const password = newPassword();
        await auth.addUser(needName(), oneOf(flag('role'), USER_ROLES, '--role') as UserRole, password);
        out(env.NIXFLEET_NEW_PASSWORD ? `added ${needName()}` : `added ${needName()} with password: ${password}`);
        return 0;
      }
      case 'user passwd': {
        const password = newPassword();
        await auth.setPassword(needName(), password);
        out(env.NIXFLEET_NEW_PASSWORD ? `password of ${needName()} changed` : `new password of ${needName()}: ${password}`);
        return 0;
      }
      case 'user role':
        await auth.setRole(needName(), oneOf(positional[1], USER_ROLES, 'role') as UserRole);
        out(`${needName()} is now ${positional[1]}`);
        return 0;
      case 'user remove':
        await auth.removeUser(needName());
        out(`removed ${needName()}`);
        return 0;
      case 'user totp':
        if (positional[1] === 'enable') {
          const { secret, uri } = await auth.enableTotp(needName());
          out(`secret: ${secret}\nuri: ${uri}`);
        } else if (positional[1] === 'disable') {
          await auth.disableTotp(needName());
          out(`second factor of ${needName()} disabled`);
        } else fail('say enable or disable');
        return 0;
      case 'token list':
        for (const t of auth.listTokens()) out(`${t.id}\t${t.name}\t${t.role}${t.hostId ? `:${t.hostId}` : ''}\t${t.revokedAt ? `revoked ${t.revokedAt}` : 'active'}`);
        return 0;
      case 'token create': {
        const created = await auth.createToken({ name: needName(), role: oneOf(flag('role'), TOKEN_ROLES, '--role') as TokenRole, hostId: flag('host') ?? null }, 'cli');
        out(`token ${created.id} (shown once, keep it secret):\n${created.token}`);
        return 0;
      }
      case 'token revoke':
        await auth.revokeToken(needName());
        out(`revoked ${needName()}`);
        return 0;
      default:
        out(USAGE);
        return 2;
    }
  } finally {
    cleanup();
    await store.close();
  }
}

function oneOf(value: string | undefined, allowed: readonly string[], what: string): string {
  if (value === undefined || !allowed.includes(value)) fail(`${what} must be one of ${allowed.join(', ')}`);
  return value!;
}

function fail(message: string): never {
  throw new AuthError('invalid', message);
}

// Run as a program (not when imported by tests).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  runAdmin(process.argv.slice(2), process.env, (line) => process.stdout.write(`${line}\n`), (line) => process.stderr.write(`${line}\n`)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`nixfleet admin: unexpected error: ${String((error as Error).stack ?? error)}\n`);
      process.exit(70);
    },
  );
}
