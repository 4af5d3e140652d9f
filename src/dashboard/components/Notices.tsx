// Dismissible notices for API errors (the server's message, per host when an action had many).
import { dismiss, notices } from '../ui.js';

export function Notices() {
  const list = notices.value;
  return (
    <div class="notices" aria-live="polite">
      {list.map((n) => (
        <div key={n.id} class={`notice notice-${n.kind}`}>
          <div class="notice-body">
            <strong>{n.title}</strong>
            {n.details.length === 1 ? <div class="notice-detail">{n.details[0]}</div> : null}
            {n.details.length > 1 ? (
              <ul class="notice-detail">
                {n.details.map((d, i) => (
                  <li key={i}>{d}</li>
                ))}
              </ul>
            ) : null}
          </div>
          <button type="button" class="icon-button" aria-label="Dismiss" title="Dismiss" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
