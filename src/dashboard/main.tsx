// Entry of the dashboard bundle: reads the beacon interval the server put in the page, starts the
// one StateSync with its socket in a dedicated worker (WorkerSockets: the page's main thread gets
// one task per batch of frames, not one per frame), bridges it to signals (store.ts) and renders
// the app. `window.__nixfleet = { sync, sockets }` is the only global, for tests and debugging.
import './app.css';
import { effect } from '@preact/signals';
import { render } from 'preact';
import { StateSync } from '../client/state-sync.js';
import { WorkerSockets } from '../client/worker-sockets.js';
import { App } from './components/App.js';
import { StoreContext } from './context.js';
import { FleetStore } from './store.js';
import { loadSession, probeSession, toLogin } from './session.js';
import { pruneSelection, setSelection } from './ui.js';

declare global {
  interface Window {
    __nixfleet?: { sync: StateSync; sockets: WorkerSockets };
  }
}

function beaconInterval(): number {
  const content = document.querySelector('meta[name="nixfleet-beacon-ms"]')?.getAttribute('content') ?? '';
  const ms = Number(content);
  return Number.isFinite(ms) && ms > 0 ? ms : 30_000;
}

const beaconMs = beaconInterval();
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
// Where the worker cannot run (no Worker, a CSP without worker-src), sockets open on the page.
const sockets = new WorkerSockets(() => new Worker('/assets/socket-worker.js', { type: 'module', name: 'nixfleet-socket' }));
const sync = new StateSync({ url: `${scheme}://${location.host}/ws`, beaconIntervalMs: beaconMs, WebSocket: sockets.WebSocket });
const store = new FleetStore(sync);
window.__nixfleet = { sync, sockets };

// The selection follows the fleet: removed hosts leave it, a new epoch clears it.
effect(() => pruneSelection(store.hostsById.value));
let resets = store.epochResets.peek();
effect(() => {
  if (store.epochResets.value !== resets) {
    resets = store.epochResets.value;
    setSelection([]);
  }
});

// A socket closed because the session ended cannot recover by reconnecting: log in again. While
// merely offline, ask now and then whether the session is still there.
sync.on('status', ({ reason }) => {
  if (reason === 'unauthorized') toLogin();
});
setInterval(() => {
  const { status } = sync.status;
  if (status === 'offline' || status === 'connecting') void probeSession();
}, 3000);

if (await loadSession()) {
  render(
    <StoreContext.Provider value={store}>
      <App beaconMs={beaconMs} />
    </StoreContext.Provider>,
    document.getElementById('app')!,
  );
  sync.start();
}
