// Hostile input at scale: generated socket frames and API bodies (random JSON, prototype keys,
// deep nesting, oversized strings, wrong types) against a real server. The server must never
// crash or answer 5xx, and input it rejects must leave the state exactly as it was.
// FUZZ_RUNS scales it (default 10,000 inputs in all).
import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const TOTAL = Number(process.env.FUZZ_RUNS ?? 10_000);
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ clientMessagesPerSecond: 1_000_000, maxClients: 100 });
  await request(server.url, 'POST', '/api/hosts', { hostname: 'h1' }, server.authHeaders);
});
afterAll(() => server.dispose());

const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'type', 'payload', 'id', 'fields', '');
const hostileString = fc.oneof(
  fc.string({ maxLength: 50 }),
  fc.constantFrom('<script>alert(1)</script>', 'javascript:alert(1)', '\u001b]8;;javascript:alert(1)\u0007x\u001b]8;;\u0007', '\u0000', '../../etc/passwd', '%00', '{{7*7}}'),
  fc.nat(200).map((n) => '['.repeat(n * 10) + ']'.repeat(n * 10)),
);
const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.jsonValue({ maxDepth: 3 }),
    hostileString,
    fc.constantFrom(null, true, -1, 1e308, -0, 2 ** 53 + 1, 'NaN'),
    fc.dictionary(fc.oneof(hostileKey, fc.string({ maxLength: 10 })), tie('value'), { maxKeys: 5 }),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
})).value;

/** Serializes so that keys like __proto__ really appear in the JSON text. */
function toJson(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const frameArb = fc.oneof(
  hostileValue.map(toJson),
  fc.record({ type: fc.oneof(fc.constant('get_state'), hostileString), payload: hostileValue }).map(toJson),
  fc.dictionary(hostileKey, hostileValue).map((o) => toJson({ type: 'get_state', ...o })),
  fc.string({ maxLength: 200 }),
  fc.nat(6000).map((n) => 'x'.repeat(n)),
);

const ROUTES: Array<[string, string]> = [
  ['POST', '/api/hosts'],
  ['PATCH', '/api/hosts/h1'],
  ['DELETE', '/api/hosts/nope'],
  ['POST', '/api/commands'],
  ['POST', '/api/commands/nope/output'],
  ['POST', '/api/commands/nope/finish'],
  ['POST', '/api/pipelines'],
  ['PATCH', '/api/pipelines/nope'],
  ['POST', '/api/events'],
  ['POST', '/api/tokens'],
  ['POST', '/api/users'],
  ['POST', '/api/login'],
];

describe('fuzz', () => {
  it(`survives ${TOTAL / 2} hostile socket frames with zero crashes`, async () => {
    const frames = fc.sample(frameArb, TOTAL / 2);
    let closedByServer = 0;
    let errors = 0;
    const before = server.manager.stateJson();
    for (let start = 0; start < frames.length; start += 500) {
      const batch = frames.slice(start, start + 500);
      const ws = new WebSocket(server.wsUrl, { headers: server.authHeaders });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      // The server has worked through the batch when it answers a last, unmistakable frame, or
      // it closed the socket on the way.
      const END = 'fuzz-batch-end';
      const settled = new Promise<{ open: boolean; code: number | null }>((resolve) => {
        ws.on('message', (data) => {
          const text = String(data);
          if (text.startsWith('{"type":"error"')) errors++;
          if (text.includes(END)) resolve({ open: true, code: null });
        });
        ws.once('close', (code) => resolve({ open: false, code }));
      });
      for (const frame of batch) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: END }));
      const { open, code } = await settled;
      if (open) {
        const closed = new Promise((resolve) => ws.once('close', resolve));
        ws.close();
        await closed;
      }
      // A frame over 4096 bytes closes the socket with 1009, as documented; nothing else does.
      const oversized = batch.some((frame) => Buffer.byteLength(frame) > 4096);
      expect({ batch: start, closedByServer: !open, code }).toEqual({ batch: start, closedByServer: oversized, code: oversized ? 1009 : null });
      if (!open) closedByServer++;
    }
    expect(errors).toBeGreaterThan(0);
    expect(closedByServer).toBeGreaterThan(0); // the generator does make oversized frames
    expect(server.manager.stateJson()).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await request(server.url, 'GET', '/healthz')).status).toBe(200);
  });

  it(`survives ${TOTAL / 2} hostile API bodies: no 5xx, rejected input changes nothing`, async () => {
    const bodies = fc.sample(fc.tuple(fc.constantFrom(...ROUTES), fc.oneof(hostileValue.map(toJson), fc.string({ maxLength: 100 }))), TOTAL / 2);
    const statuses = new Map<number, number>();
    for (const [[method, path], body] of bodies) {
      const versionBefore = server.manager.version;
      const stateBefore = server.manager.stateJson();
      const res = await request(server.url, method, path, body, server.authHeaders);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect(res.status).toBeLessThan(500);
      if (res.status >= 400) {
        expect(server.manager.version).toBe(versionBefore);
        expect(server.manager.stateJson()).toBe(stateBefore);
      }
    }
    expect(statuses.get(400)).toBeGreaterThan(TOTAL / 10);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await request(server.url, 'GET', '/healthz')).status).toBe(200);
  });
});
