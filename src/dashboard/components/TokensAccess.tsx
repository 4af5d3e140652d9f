// API tokens on the access page: created with a role (and, for agents, the one host they report
// for), shown once, revocable.
import { useEffect, useState } from 'preact/hooks';
import type { TokenInfo } from '../../protocol/api.js';
import { TOKEN_ROLES, type TokenRole } from '../../protocol/constants.js';
import { attempt } from '../actions.js';
import { callApi } from '../api.js';
import { useStore } from '../context.js';
import { checkDisplayName } from '../name-check.js';
import type { Secret } from './AccessPanel.js';
import { Options } from './Options.js';

export function TokensAccess({ showSecret }: { showSecret: (secret: Secret) => void }) {
  const store = useStore();
  const [tokens, setTokens] = useState<TokenInfo[]>([]);
  const refresh = () => attempt('Could not load the tokens', async () => setTokens((await callApi('listTokens')).tokens));
  useEffect(() => void refresh(), []);

  async function createToken(event: Event) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const role = String(data.get('role')) as TokenRole;
    const body = { name: String(data.get('name')), role, ...(role === 'agent' ? { host_id: String(data.get('host_id')) } : {}) };
    await attempt('Could not create the token', async () => {
      const created = await callApi('createToken', { body });
      showSecret({ title: `Token ${created.id}: copy it now, it is not shown again`, value: created.token });
      form.reset();
    });
    await refresh();
  }

  const revoke = (id: string) => attempt('Could not revoke the token', () => callApi('revokeToken', { params: { id } })).then(refresh);
  // This section exists only while the panel is open: a closed panel must not re-render on every
  // fleet change. Host names change only when hosts come, go or are renamed.
  const hostnames = store.hostnames.value;
  return (
    <section aria-label="API tokens">
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
                  <button type="button" class="button small danger" onClick={() => void revoke(t.id)}>
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
        <label class="field stacked">Role<select name="role"><Options values={TOKEN_ROLES} /></select></label>
        <label class="field stacked">Host (agents)<select name="host_id">{[...hostnames].map(([id, name]) => <option key={id} value={id}>{name}</option>)}</select></label>
        <button type="submit" class="button">Create token</button>
      </form>
    </section>
  );
}
