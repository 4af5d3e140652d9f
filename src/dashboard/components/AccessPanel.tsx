// The admin page for access: a modal holding the users and the API tokens sections, and the one
// place a secret (a new token, a TOTP URI) is shown, once. Everything goes through the admin API.
import { signal } from '@preact/signals';
import { useEffect, useState } from 'preact/hooks';
import { Modal } from './Modal.js';
import { TokensAccess } from './TokensAccess.js';
import { UsersAccess } from './UsersAccess.js';

export const accessOpen = signal(false);

/** A secret the server shows once; the sections hand it here to show. */
export interface Secret {
  title: string;
  value: string;
}

export function AccessPanel() {
  const [secret, setSecret] = useState<Secret | null>(null);
  const open = accessOpen.value;
  useEffect(() => {
    if (!open) setSecret(null);
  }, [open]);
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
        {open ? <UsersAccess showSecret={setSecret} /> : null}
        {open ? <TokensAccess showSecret={setSecret} /> : null}
        <div class="dialog-actions">
          <button type="button" class="button" onClick={() => (accessOpen.value = false)}>Close</button>
        </div>
      </div>
    </Modal>
  );
}
