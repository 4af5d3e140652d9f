// The agent when the link fails: a cut mid-command loses no line and doubles none (resent from
// the server's `output_seq`), a result produced offline is delivered after the reconnect, an old
// server gets nothing twice, the output buffer is bounded, a refused token is retried, and a
// silent link is declared dead by the keepalive.
import { describe, expect, it } from 'vitest';
import type { RegisteredPayload } from '../src/protocol/agent-wire.js';
import { script, startTestAgent, type FakeAgentServer, type TestAgentOptions } from './agent-harness.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();
const LINES = 300;
/** 300 numbered lines on stdout, a short pause every 10, then exit 0: about a second. */
const COUNTER = 'i=1; while [ $i -le 300 ]; do echo "line $i"; [ $((i % 10)) -eq 0 ] && sleep 0.02; i=$((i + 1)); done; exit 0\n';

function seqs(server: FakeAgentServer, connection: number): number[] {
  return server.of('output', connection).map((output) => output.seq as number);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** An agent running COUNTER as `test`, whose server answers the n-th register with `answer(n)`. */
async function counterAgent(answer: (connection: number, server: FakeAgentServer) => RegisteredPayload, options: TestAgentOptions = {}) {
  let server!: FakeAgentServer;
  const started = await startTestAgent(defer, {
    ...options,
    server: { registered: (_register, connection) => answer(connection, server) },
    ops: { test: ['sh', '{repo_dir}/counter.sh'] },
  });
  server = started.server;
  script(started.dir, 'counter.sh', COUNTER);
  await until('registered', () => server.of('heartbeat').length >= 1);
  server.command('test');
  return started;
}

describe('Agent reconnects', () => {
  it('resends exactly the lines after the output_seq of registered when the link is cut mid-output', async () => {
    let storedUpTo = 0;
    const { server } = await counterAgent((connection, server) => {
      if (connection === 1) return { host_id: 'web-01', command: null, output_seq: 0 };
      // The server stored fewer lines than reached the socket (some were in flight): it says so.
      storedUpTo = Math.max(0, seqs(server, 1).length - 3);
      return { host_id: 'web-01', command: 'test', output_seq: storedUpTo };
    });
    await until('40 lines on the first connection', () => seqs(server, 1).length >= 40);
    server.cut();
    await until('the status', () => server.of('status').length === 1);

    expect(server.connections).toBe(2);
    expect(seqs(server, 1)).toEqual(range(1, seqs(server, 1).length));
    expect(seqs(server, 1).length).toBeLessThan(LINES);
    // On the new connection: every line after storedUpTo, once, in order, then the status.
    expect(seqs(server, 2)).toEqual(range(storedUpTo + 1, LINES));
    expect(server.of('output', 2).map((output) => output.line)).toEqual(range(storedUpTo + 1, LINES).map((i) => `line ${i}`));
    expect(server.of('status', 2)).toEqual([expect.objectContaining({ status: 'ok', command: 'test', exit_code: 0 })]);
  });

  it('delivers lines and the result of an op that finished while the link was down', async () => {
    const { server, agent } = await counterAgent((connection) => (connection === 1 ? { host_id: 'web-01', command: null, output_seq: 0 } : { host_id: 'web-01', command: 'test', output_seq: 25 }));
    await until('30 lines', () => seqs(server, 1).length >= 30);
    server.refuseWith = 503;
    server.cut();
    await until('the op finished offline', () => agent.snapshot.command === null && !agent.snapshot.connected);
    expect(server.of('status')).toEqual([]);
    server.refuseWith = null;
    await until('the status and a heartbeat after it', () => server.of('status').length === 1 && server.of('heartbeat', 2).length >= 1);

    expect(seqs(server, 2)).toEqual(range(26, LINES));
    const second = server.received.filter((message) => message.connection === 2).map((message) => message.type);
    // register, the resent lines, the status, then the heartbeat saying the host is free.
    expect(second.slice(0, 1 + LINES - 25 + 2)).toEqual(['register', ...Array(LINES - 25).fill('output'), 'status', 'heartbeat']);
    expect(server.of('heartbeat', 2)[0]).toMatchObject({ pending_command: null });
  });

  it('resends nothing when registered says the server has the result', async () => {
    const { server } = await counterAgent((connection) => (connection === 1 ? { host_id: 'web-01', command: null, output_seq: 0 } : { host_id: 'web-01', command: null, output_seq: 0 }));
    await until('the status', () => server.of('status').length === 1);
    server.cut();
    await until('a heartbeat on the new connection', () => server.of('heartbeat', 2).length >= 1);
    // Lines or a status would have preceded that first heartbeat.
    expect(server.received.filter((message) => message.connection === 2).map((message) => message.type).slice(0, 2)).toEqual(['register', 'heartbeat']);
    expect(server.of('output', 2)).toEqual([]);
    expect(server.of('status', 2)).toEqual([]);
  });

  it('does not resend a result for another command of the same op (registered names its command_id)', async () => {
    let server!: FakeAgentServer;
    const started = await startTestAgent(defer, {
      server: { registered: (_register, connection) => (connection === 1 ? { host_id: 'web-01', command: null, output_seq: 0 } : { host_id: 'web-01', command: 'test', command_id: 'cmd-2', output_seq: 0 }) },
      ops: { test: ['sh', '{repo_dir}/counter.sh'] },
    });
    server = started.server;
    script(started.dir, 'counter.sh', COUNTER);
    await until('registered', () => server.of('heartbeat').length >= 1);
    server.command('test', 'cmd-1');
    await until('30 lines', () => seqs(server, 1).length >= 30);
    server.refuseWith = 503;
    server.cut();
    await until('the op finished offline', () => started.agent.snapshot.command === null && !started.agent.snapshot.connected);
    server.refuseWith = null;
    // The server now waits for cmd-2, a later `test`: cmd-1's lines and result are not cmd-2's.
    await until('a heartbeat on the new connection', () => server.of('heartbeat', 2).length >= 1);
    expect(server.of('output', 2)).toEqual([]);
    expect(server.of('status', 2)).toEqual([]);
  });

  it('an old server (registered without extension fields) gets every line at most once', async () => {
    const { server, agent } = await counterAgent(() => ({ host_id: 'web-01' }));
    await until('30 lines', () => seqs(server, 1).length >= 30);
    server.refuseWith = 503;
    server.cut();
    await until('the op finished offline', () => agent.snapshot.command === null && !agent.snapshot.connected);
    server.refuseWith = null;
    await until('the status', () => server.of('status').length === 1);

    // Lines handed to the dead socket are not resent (some may be lost, as with the Go agent);
    // the ones produced offline were never sent and go out now, in order, without a gap.
    const all = [...seqs(server, 1), ...seqs(server, 2)];
    expect(new Set(all).size).toBe(all.length);
    expect(seqs(server, 2).at(-1)).toBe(LINES);
    expect(seqs(server, 2)).toEqual(range(seqs(server, 2)[0]!, LINES));
    expect(seqs(server, 2)[0]).toBeGreaterThan(seqs(server, 1).at(-1)!);
    expect(server.of('status', 2)).toEqual([expect.objectContaining({ status: 'ok', command: 'test' })]);
  });

  it('keeps at most NIXFLEET_OUTPUT_BUFFER_LINES lines and warns once when it drops', async () => {
    const { server, agent, logs } = await counterAgent(
      (connection) => (connection === 1 ? { host_id: 'web-01', command: null, output_seq: 0 } : { host_id: 'web-01', command: 'test', output_seq: 5 }),
      { env: { NIXFLEET_OUTPUT_BUFFER_LINES: '20' } },
    );
    await until('10 lines', () => seqs(server, 1).length >= 10);
    server.refuseWith = 503;
    server.cut();
    await until('the op finished offline', () => agent.snapshot.command === null && !agent.snapshot.connected);
    server.refuseWith = null;
    await until('the status', () => server.of('status').length === 1);

    expect(seqs(server, 2)).toEqual(range(LINES - 19, LINES));
    expect(logs.filter((log) => log.msg.startsWith('output buffer full'))).toHaveLength(1);
  });

  it('keeps retrying with backoff while the server answers 401, and registers once it accepts', async () => {
    const { server, logs } = await startTestAgent(defer);
    await until('registered', () => server.of('heartbeat').length >= 1);
    server.refuseWith = 401;
    server.cut();
    const upgrades = server.upgrades;
    await until('three refused attempts', () => server.upgrades >= upgrades + 3);
    expect(logs.some((log) => log.level === 'error' && log.msg.includes('401: the server refused the token'))).toBe(true);
    server.refuseWith = null;
    await until('a second register', () => server.of('register').length === 2);
  });

  it('logs what a server close code means and reconnects', async () => {
    const { server, logs } = await startTestAgent(defer);
    await until('registered', () => server.of('heartbeat').length >= 1);
    server.closeWith(4401, 'token revoked');
    await until('a second connection', () => server.connections === 2);
    expect(logs.some((log) => log.level === 'error' && log.msg === 'disconnected: the token was revoked (configure a new NIXFLEET_TOKEN)')).toBe(true);
  });

  it('after 4409 (replaced by a newer connection of its host) waits the longest backoff before coming back', async () => {
    const { server } = await startTestAgent(defer, { deps: { timing: { backoffBaseMs: 1, backoffCapMs: 400 } } });
    await until('registered', () => server.of('heartbeat').length >= 1);
    const closedAt = Date.now();
    server.closeWith(4409, 'replaced by a newer connection of this host');
    await until('a second connection', () => server.connections === 2);
    // Any other close would be retried within 1 ms (backoff base 1 ms).
    expect(server.acceptedAt[1]! - closedAt).toBeGreaterThanOrEqual(380);
  });

  it('takes a link whose server stops answering pings for dead and reconnects', async () => {
    const { server } = await startTestAgent(defer, { server: { autoPong: false }, deps: { timing: { backoffBaseMs: 20, backoffCapMs: 200, pingIntervalMs: 50, deadAfterMs: 250 } } });
    await until('a second connection', () => server.connections >= 2, 5000);
    expect(server.closeCodes[0]).toBe(1006);
  });

  it('keeps a link whose server answers pings', async () => {
    const { server } = await startTestAgent(defer, { deps: { timing: { backoffBaseMs: 20, backoffCapMs: 200, pingIntervalMs: 50, deadAfterMs: 250 } } });
    // Nothing is to happen: 1.2 s (almost five dead-link limits) of heartbeats on one connection.
    await until('6 heartbeats', () => server.of('heartbeat').length >= 6);
    expect(server.connections).toBe(1);
  });
});
