// Coalesced output: the deltas of one committed batch leave for a client in one socket write
// (corked around the batch), still one WebSocket message per frame, in version order.
import { Socket } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import type { Change } from '../src/protocol/index.js';
import { SyncRecorder } from './support/sync-recorder.js';
import { startTestServer, type TestServer } from './support/test-server.js';

let server: TestServer;
let recorder: SyncRecorder | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  recorder?.close();
  await server?.dispose();
});

const event = (i: number): Change => ({
  type: 'event',
  event: { id: `ev-${i}`, timestamp: '2026-01-01T00:00:00.000Z', category: 'test', level: 'info', actor: null, host_id: null, action: null, message: `event ${i}`, details: null },
});

it('sends a committed batch of 50 deltas to a client in one write, each as its own message, in order', async () => {
  server = await startTestServer();
  recorder = await SyncRecorder.connect(server.wsUrl, { headers: server.authHeaders });
  await recorder.waitFor(() => recorder!.frames.length > 0);
  const writev = vi.spyOn(Socket.prototype as unknown as { _writev: (...args: unknown[]) => void }, '_writev');
  const write = vi.spyOn(Socket.prototype as unknown as { _write: (...args: unknown[]) => void }, '_write');
  const start = server.manager.version;
  await Promise.all(Array.from({ length: 50 }, (_, i) => server.manager.apply(event(i))));
  await recorder.waitForVersion(start + 50);
  // One server-side write for the whole batch (the client sends nothing meanwhile).
  expect(writev.mock.calls.length + write.mock.calls.length).toBe(1);
  const deltas = recorder.messages('delta');
  expect(deltas.map((d) => d.version)).toEqual(Array.from({ length: 50 }, (_, i) => start + 1 + i));
  expect(recorder.violations).toEqual([]);
});
