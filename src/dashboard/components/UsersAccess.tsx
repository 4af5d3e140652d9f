// Users on the access page: their roles, their second factor (changed only with the acting
// user's password, and a code to turn one's own off), removal, and the form to add one.
import { useEffect, useState } from 'preact/hooks';
import type { UserInfo } from '../../protocol/api.js';
import { USER_ROLES, type UserRole } from '../../protocol/constants.js';
import { attempt } from '../actions.js';
import { callApi } from '../api.js';
import { checkUserName } from '../name-check.js';
import { me } from '../session.js';
import type { Secret } from './AccessPanel.js';
import { Options } from './Options.js';

interface TotpChange {
  user: string;
  enable: boolean;
  /** Turning one's own second factor off takes a current code too. */
  needsCode: boolean;
}

export function UsersAccess({ showSecret }: { showSecret: (secret: Secret) => void }) {
  const [users, setUsers] = useState<UserInfo[]>([]);
  const [totpChange, setTotpChange] = useState<TotpChange | null>(null);
  const refresh = () => attempt('Could not load the users', async () => setUsers((await callApi('listUsers')).users));
  useEffect(() => void refresh(), []);

  async function addUser(event: Event) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const body = { name: String(data.get('name')), role: String(data.get('role')) as UserRole, password: String(data.get('password')) };
    if (await attempt('Could not add the user', () => callApi('createUser', { body }))) form.reset();
    await refresh();
  }

  async function confirmTotpChange(event: Event) {
    event.preventDefault();
    if (!totpChange) return;
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const body = { password: String(data.get('password')), ...(totpChange.needsCode ? { totp: String(data.get('totp')) } : {}) };
    const params = { name: totpChange.user };
    const ok = await attempt('Could not change the second factor', async () => {
      if (!totpChange.enable) return callApi('disableTotp', { params, body });
      const { uri } = await callApi('enableTotp', { params, body });
      showSecret({ title: `Add this to ${totpChange.user}'s authenticator app (shown once)`, value: uri });
    });
    if (ok) setTotpChange(null);
    await refresh();
  }

  const self = me.value?.name;
  const setRole = (name: string, role: string) => attempt('Could not change the role', () => callApi('updateUser', { params: { name }, body: { role: role as UserRole } })).then(refresh);
  const remove = (name: string) => confirm(`Remove user ${name}? Their sessions end at once.`) && void attempt('Could not remove the user', () => callApi('removeUser', { params: { name } })).then(refresh);
  return (
    <section aria-label="Users">
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
                <select aria-label={`Role of ${u.name}`} value={u.role} disabled={u.name === self} onChange={(e) => void setRole(u.name, e.currentTarget.value)}>
                  <Options values={USER_ROLES} />
                </select>
              </td>
              <td>
                {u.totp ? 'TOTP ' : 'password only '}
                <button type="button" class="button small" onClick={() => setTotpChange({ user: u.name, enable: !u.totp, needsCode: u.totp && u.name === self })}>
                  {u.totp ? 'Disable' : 'Enable TOTP'}
                </button>
              </td>
              <td>
                {u.name !== self ? (
                  <button type="button" class="button small danger" onClick={() => remove(u.name)}>
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
        <label class="field stacked">Role<select name="role"><Options values={USER_ROLES} /></select></label>
        <label class="field stacked">Password (12+)<input type="password" name="password" required minLength={12} autoComplete="new-password" /></label>
        <button type="submit" class="button">Add user</button>
      </form>
    </section>
  );
}
