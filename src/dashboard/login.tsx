// The login page: user name and password, then the authenticator code when the account has
// one. On success the server sets the session cookie and we go to the dashboard.
import './app.css';
import { render } from 'preact';
import { useState } from 'preact/hooks';
import { API, apiPath, type ApiErrorBody } from '../protocol/api.js';
import type { ApiRequest } from '../protocol/api-schemas.js';

function LoginForm() {
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const body: ApiRequest<'login'> = { username: String(form.get('username') ?? ''), password: String(form.get('password') ?? '') };
    if (needTotp) body.totp = String(form.get('totp') ?? '');
    setBusy(true);
    setError('');
    try {
      const response = await fetch(apiPath('login'), { method: API.login.method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin' });
      if (response.ok) {
        location.assign('/');
        return;
      }
      const answer = (await response.json().catch(() => ({}))) as Partial<ApiErrorBody>;
      if (answer.error === 'totp_required') setNeedTotp(true);
      setError(answer.message ?? `login failed (${response.status})`);
    } catch {
      setError('the server could not be reached');
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="login-page">
      <form class="panel login-panel" onSubmit={submit} aria-labelledby="login-title">
        <div class="brand">
          <span class="logo" aria-hidden="true" />
          <h1 id="login-title">NixFleet</h1>
        </div>
        <label>
          User name
          <input name="username" type="text" autocomplete="username" required autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        {needTotp ? (
          <label>
            Authenticator code
            <input name="totp" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required autofocus />
          </label>
        ) : null}
        {error ? (
          <p class="login-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}

render(<LoginForm />, document.getElementById('login')!);
