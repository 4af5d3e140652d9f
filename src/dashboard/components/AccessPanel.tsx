// The admin page for access: users (role, second factor, removal) and API tokens (created with a
// role and, for agents, a host; shown once; revocable). Everything goes through the admin API.
import { signal } from '@preact/signals';
import { useEffect, useState } from 'preact/hooks';
import { call } from '../api.js';
import { useStore } from '../context.js';
import { checkDisplayName, checkUserName } from '../name-check.js';
import { me } from '../session.js';
import { notify } from '../ui.js';
import { Modal } from './Modal.js';

interface UserRow { name: string; role: string; totp: boolean; created_at: string }
interface TokenRow { id: string; name: string; role: string; host_id: string | null; created_by: string | null; created_at: string; revoked_at: string | null }

export const accessOpen = signal(false);
const USER_ROLES = ['viewer', 'operator', 'admin'];
const TOKEN_ROLES = ['viewer', 'operator', 'admin', 'agent'];

async function attempt(title: string, fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (error) {
    notify('error', title, [(error as Error).message]);
    return false;
  }
}

const NO_HOSTS: ReadonlyMap<string, string> = new Map();

export function AccessPanel() {
  const store = useStore();
  const [users, setUsers] = useState<UserRow[]>([]);
  const [tokens, setTokens] = useState<TokenRow[]>([]);
  const [secret, setSecret] = useState<{ title: string; value: string } | null>(null);
  const [totpChange, setTotpChange] = useState<{ user: string; enable: boolean; needsCode: boolean } | null>(null);
  const open = accessOpen.value;

  async function refresh() {
    await attempt('Could not load users and tokens', async () => {
      setUsers((await call<{ users: UserRow[] }>('GET', '/api/users')).users);
      setTokens((await call<{ tokens: TokenRow[] }>('GET', '/api/tokens')).tokens);
    });
  }
  useEffect(() => {
    if (open) void refresh();
    else {
      setSecret(null);
      setTotpChange(null);
    }
  }, [open]);

  async function addUser(event: Event) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const ok = await attempt('Could not add the user', () => call('POST', '/api/users', { name: data.get('name'), role: data.get('role'), password: data.get('password') }));
    if (ok) form.reset();
    await refresh();
  }

  /** A second factor changes only with the acting user's password (and code, to turn one's own off). */
  async function confirmTotpChange(event: Event) {
    event.preventDefault();
    if (!totpChange) return;
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const proof = { password: data.get('password'), ...(totpChange.needsCode ? { totp: data.get('totp') } : {}) };
    const path = `/api/users/${encodeURIComponent(totpChange.user)}/totp`;
    const ok = await attempt('Could not change the second factor', async () => {
      if (!totpChange.enable) return call('DELETE', path, proof);
      const { uri } = await call<{ uri: string }>('POST', path, proof);
      setSecret({ title: `Add this to ${totpChange.user}'s authenticator app (shown once)`, value: uri });
    });
    if (ok) setTotpChange(null);
    await refresh();
  }

  async function createToken(event: Event) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const role = String(data.get('role'));
    const body = { name: data.get('name'), role, ...(role === 'agent' ? { host_id: data.get('host_id') } : {}) };
    await attempt('Could not create the token', async () => {
      const created = await call<{ id: string; token: string }>('POST', '/api/tokens', body);
      setSecret({ title: `Token ${created.id}: copy it now, it is not shown again`, value: created.token });
      form.reset();
    });
    await refresh();
  }

  // Read only while open: a closed panel must not re-render on every fleet change. Host names
  // change only when hosts come, go or are renamed, unlike the hosts themselves.
  const hostnames = open ? store.hostnames.value : NO_HOSTS;
  return (
    <Modal open={open} onClose={() => (accessOpen.value = false)} labelledBy="access-title">
      <div class="dialog-body access-body">
        <h2 id="access-title">Access</h2>
        {secret ? (
          <div role="status">
            <p>
              <strong>{secret.title}</strong>
            </p>
            <p class="secret" data-testid="new-secret">
              {secret.value}
            </p>
          </div>
        ) : null}

        {totpChange ? (
          <form class="access-form" onSubmit={confirmTotpChange} aria-label="Confirm the second-factor change">
            <p>
              {totpChange.enable ? 'Turn on' : 'Turn off'} TOTP for <strong>{totpChange.user}</strong>: confirm with your password{totpChange.needsCode ? ' and a current code' : ''}.
            </p>
            <label class="field stacked">Your password<input type="password" name="password" required autoComplete="current-password" /></label>
            {totpChange.needsCode ? <label class="field stacked">Code<input type="text" name="totp" required inputMode="numeric" autoComplete="one-time-code" maxLength={7} /></label> : null}
            <button type="submit" class="button">Confirm</button>
            <button type="button" class="button" onClick={() => setTotpChange(null)}>Cancel</button>
          </form>
        ) : null}

        <h3>Users</h3>
        <table class="access-table" aria-label="Users">
          <thead>
            <tr><th>Name</th><th>Role</th><th>Second factor</th><th /></tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.name} data-user={u.name}>
                <td>{u.name}</td>
                <td>
                  <select aria-label={`Role of ${u.name}`} value={u.role} disabled={u.name === me.value?.name} onChange={(e) => void attempt('Could not change the role', () => call('PATCH', `/api/users/${encodeURIComponent(u.name)}`, { role: e.currentTarget.value })).then(refresh)}>
                    {USER_ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
                  </select>
                </td>
                <td>
                  {u.totp ? 'TOTP ' : 'password only '}
                  <button type="button" class="button small" onClick={() => setTotpChange({ user: u.name, enable: !u.totp, needsCode: u.totp && u.name === me.value?.name })}>
                    {u.totp ? 'Disable' : 'Enable TOTP'}
                  </button>
                </td>
                <td>
                  {u.name !== me.value?.name ? (
                    <button type="button" class="button small danger" onClick={() => confirm(`Remove user ${u.name}? Their sessions end at once.`) && void attempt('Could not remove the user', () => call('DELETE', `/api/users/${encodeURIComponent(u.name)}`)).then(refresh)}>
                      Remove
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <form class="access-form" onSubmit={addUser} aria-label="Add a user">
          <label class="field stacked">Name<input type="text" name="name" required maxLength={64} autoComplete="off" onInput={checkUserName} /></label>
          <label class="field stacked">Role<select name="role">{USER_ROLES.map((r) => <option key={r} value={r}>{r}</option>)}</select></label>
          <label class="field stacked">Password (12+)<input type="password" name="password" required minLength={12} autoComplete="new-password" /></label>
          <button type="submit" class="button">Add user</button>
        </form>

        <h3>API tokens</h3>
        <table class="access-table" aria-label="API tokens">
          <thead>
            <tr><th>Id</th><th>Name</th><th>Role</th><th>Created</th><th /></tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr key={t.id} data-token={t.id}>
                <td><code>{t.id}</code></td>
                <td>{t.name}</td>
                <td>{t.role}{t.host_id ? ` (${t.host_id})` : ''}</td>
                <td>{t.created_at.slice(0, 16).replace('T', ' ')}{t.created_by ? ` by ${t.created_by}` : ''}</td>
                <td>
                  {t.revoked_at ? 'revoked' : (
                    <button type="button" class="button small danger" onClick={() => void attempt('Could not revoke the token', () => call('DELETE', `/api/tokens/${encodeURIComponent(t.id)}`)).then(refresh)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <form class="access-form" onSubmit={createToken} aria-label="Create an API token">
          <label class="field stacked">Name<input type="text" name="name" required maxLength={100} autoComplete="off" onInput={checkDisplayName} /></label>
          <label class="field stacked">Role<select name="role">{TOKEN_ROLES.map((r) => <option key={r} value={r}>{r}</option>)}</select></label>
          <label class="field stacked">Host (agents)<select name="host_id">{[...hostnames].map(([id, name]) => <option key={id} value={id}>{name}</option>)}</select></label>
          <button type="submit" class="button">Create token</button>
        </form>
        <div class="dialog-actions">
          <button type="button" class="button" onClick={() => (accessOpen.value = false)}>Close</button>
        </div>
      </div>
    </Modal>
  );
}
