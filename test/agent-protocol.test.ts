// The agent on a live link: what it registers and heartbeats, how it runs one op at a time as
// a real process group (output with seq, status, start and end heartbeats), and how it handles
// stop, kill_command, restart, reboot and ops it cannot run.
import { describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../src/agent/version.js';
import { processGone, script, startTestAgent, TEST_FACTS, type FakeAgentServer } from './agent-harness.js';
import { cleanupAfterEach } from './support/cleanups.js';
import { until } from './support/until.js';

const defer = cleanupAfterEach();

/** Index in `server.received` of the first message matching, after `from`. */
function indexOf(server: FakeAgentServer, predicate: (type: string, payload: Record<string, unknown>) => boolean, from = 0): number {
  return server.received.findIndex((message, index) => index >= from && predicate(message.type, message.payload));
}

async function statusOf(server: FakeAgentServer, op: string): Promise<Record<string, unknown>> {
  await until(`status of ${op}`, () => server.of('status').some((status) => status.command === op));
  return server.of('status').find((status) => status.command === op)!;
}

function outputLines(server: FakeAgentServer, connection?: number): string[] {
  return server.of('output', connection).map((output) => output.line as string);
}

describe('Agent', () => {
  describe('registration and heartbeats', () => {
    it('registers with every field the Go agent sends, then heartbeats at the interval', async () => {
      const { server, dir } = await startTestAgent(defer);
      await until('5 heartbeats', () => server.of('heartbeat').length >= 5);

      expect(server.received[0]!.type).toBe('register');
      expect(server.of('register')).toEqual([
        {
          hostname: 'web-01',
          host_type: 'nixos',
          agent_version: AGENT_VERSION,
          os_version: TEST_FACTS.os_version,
          nixpkgs_version: TEST_FACTS.nixpkgs_version,
          generation: TEST_FACTS.generation,
          theme_color: '',
          heartbeat_interval: 0.2,
          location: '',
          device_type: '',
          repo_url: '',
          repo_dir: dir,
        },
      ]);
      for (const heartbeat of server.of('heartbeat')) {
        expect(Object.keys(heartbeat).sort()).toEqual(['command_pid', 'generation', 'metrics', 'nixpkgs_version', 'pending_command', 'update_status']);
        expect(heartbeat).toMatchObject({ generation: TEST_FACTS.generation, nixpkgs_version: TEST_FACTS.nixpkgs_version, pending_command: null, command_pid: null, update_status: null });
        const metrics = heartbeat.metrics as Record<string, number>;
        for (const key of ['cpu', 'ram', 'swap']) {
          expect(metrics[key]).toBeGreaterThanOrEqual(0);
          expect(metrics[key]).toBeLessThanOrEqual(100);
        }
        expect(metrics.load).toBeGreaterThanOrEqual(0);
      }
      // The first heartbeat answers `registered` at once; the periodic ones follow the interval.
      const times = server.received.filter((message) => message.type === 'heartbeat').map((message) => message.at);
      const gaps = times.slice(2).map((at, i) => at - times[i + 1]!);
      const median = gaps.sort((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
      expect(median).toBeGreaterThanOrEqual(150);
      expect(median).toBeLessThan(450);
    });

    it('sends nothing but register before the server answers registered', async () => {
      let answer: () => void = () => {};
      const { server } = await startTestAgent(defer, {
        server: { registered: (register) => ((answer = () => server.send('registered', { host_id: register.hostname })), null) },
      });
      await until('register', () => server.of('register').length === 1);
      // Nothing is to happen meanwhile: 500 ms is two heartbeat intervals.
      await until('500 ms after register', () => Date.now() - server.received[0]!.at > 500);
      expect(server.received.map((message) => message.type)).toEqual(['register']);
      answer();
      await until('a heartbeat', () => server.of('heartbeat').length >= 1);
    });
  });

  describe('running an op', () => {
    it('acknowledges the start with a heartbeat, streams numbered lines in order, then sends status and a heartbeat', async () => {
      const { server, dir } = await startTestAgent(defer, { ops: { test: ['sh', '{repo_dir}/test.sh'] } });
      script(dir, 'test.sh', 'i=1; while [ $i -le 50 ]; do echo "out $i"; i=$((i + 1)); done\necho "a warning" >&2\nprintf "tail without newline"\nexit 3\n');
      await until('registered', () => server.of('heartbeat').length >= 1);
      const commandAt = server.received.length;
      server.command('test');
      const status = await statusOf(server, 'test');
      await until('a heartbeat after the status', () => server.received.at(-1)!.type === 'heartbeat' && server.received.at(-1)!.payload.pending_command === null);

      expect(status).toEqual({ status: 'error', command: 'test', exit_code: 3, message: 'exit code 3', generation: TEST_FACTS.generation });
      const start = indexOf(server, (type, payload) => type === 'heartbeat' && payload.pending_command === 'test', commandAt);
      const firstOutput = indexOf(server, (type) => type === 'output');
      expect(start).toBeGreaterThanOrEqual(0);
      expect(start).toBeLessThan(firstOutput);
      expect(server.received[start]!.payload.command_pid).toEqual(expect.any(Number));

      const outputs = server.of('output');
      expect(outputs.map((output) => output.seq)).toEqual(Array.from({ length: 52 }, (_, i) => i + 1));
      expect(outputs.filter((output) => output.stream === 'stdout').map((output) => output.line)).toEqual([...Array.from({ length: 50 }, (_, i) => `out ${i + 1}`), 'tail without newline']);
      expect(outputs.find((output) => output.stream === 'stderr')).toEqual({ line: 'a warning', stream: 'stderr', command: 'test', is_error: true, seq: expect.any(Number) });
      for (const output of outputs) expect(output).toMatchObject({ command: 'test', is_error: output.stream === 'stderr' });

      // status comes after every line, and the heartbeat right after it says the host is free.
      const statusIndex = indexOf(server, (type) => type === 'status');
      expect(server.received.slice(statusIndex).some((message) => message.type === 'output')).toBe(false);
      expect(server.received[statusIndex + 1]).toMatchObject({ type: 'heartbeat', payload: { pending_command: null, command_pid: null } });
    });

    it('answers a second command while busy with command_rejected', async () => {
      const { server, dir } = await startTestAgent(defer, { ops: { test: ['sh', '{repo_dir}/slow.sh'] } });
      script(dir, 'slow.sh', 'echo started\nexec sleep 30\n');
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('test');
      await until('the op started', () => outputLines(server).includes('started'));
      const pid = server.of('heartbeat').find((heartbeat) => heartbeat.pending_command === 'test')!.command_pid;

      server.command('pull');
      await until('command_rejected', () => server.of('command_rejected').length === 1);
      expect(server.of('command_rejected')[0]).toEqual({ reason: 'command already running', current_command: 'test', current_pid: pid });
      expect(server.of('status')).toEqual([]);
    });

    it('records what a checking op learnt in update_status', async () => {
      const { server } = await startTestAgent(defer, { ops: { 'refresh-system': 'echo "running: x"; echo "configured: y"; exit 10' } });
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('refresh-system');
      await statusOf(server, 'refresh-system');
      await until('a heartbeat after the status', () => server.of('heartbeat').at(-1)!.update_status !== null);
      expect(server.of('heartbeat').at(-1)!.update_status).toEqual({
        git: { status: '', message: '', checked_at: '' },
        lock: { status: '', message: '', checked_at: '' },
        system: { status: 'outdated', message: 'configured: y', checked_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
        tests: { status: '', message: '', checked_at: '' },
      });
    });
  });

  describe('stopping', () => {
    it('stop ends the whole process group and reports exit 130', async () => {
      const { server, dir } = await startTestAgent(defer, { ops: { test: ['sh', '{repo_dir}/group.sh'] } });
      script(dir, 'group.sh', 'sleep 300 &\necho "grandchild $!"\necho ready\nwait\n');
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('test');
      await until('the op is ready', () => outputLines(server).includes('ready'));
      const grandchild = Number(outputLines(server).find((line) => line.startsWith('grandchild '))!.split(' ')[1]);
      const child = server.of('heartbeat').find((heartbeat) => heartbeat.pending_command === 'test')!.command_pid as number;
      expect(processGone(child)).toBe(false);
      expect(processGone(grandchild)).toBe(false);

      server.command('stop');
      const status = await statusOf(server, 'test');
      expect(status).toMatchObject({ status: 'error', command: 'test', exit_code: 130, message: 'stopped (SIGTERM)' });
      expect(processGone(child)).toBe(true);
      expect(processGone(grandchild)).toBe(true);
    });

    it('stop kills with SIGKILL after the grace what ignores SIGTERM', async () => {
      const { server, dir } = await startTestAgent(defer, { ops: { test: ['sh', '{repo_dir}/stubborn.sh'] } });
      // Ignored signals stay ignored across exec: the grandchild sleep ignores SIGTERM too.
      script(dir, 'stubborn.sh', "trap '' TERM\nsleep 300 &\necho \"grandchild $!\"\necho ready\nwait\n");
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('test');
      await until('the op is ready', () => outputLines(server).includes('ready'));
      const grandchild = Number(outputLines(server).find((line) => line.startsWith('grandchild '))!.split(' ')[1]);

      const stoppedAt = Date.now();
      server.command('stop');
      const status = await statusOf(server, 'test');
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(900); // NIXFLEET_STOP_GRACE=1
      expect(status).toMatchObject({ status: 'error', exit_code: 130, message: 'stopped (SIGKILL)' });
      expect(processGone(grandchild)).toBe(true);
    });

    it('kill_command sends its signal to the current group and reports how the op died', async () => {
      const { server, dir } = await startTestAgent(defer, { ops: { test: ['sh', '{repo_dir}/slow.sh'] } });
      script(dir, 'slow.sh', 'echo started\nsleep 300\n');
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('test');
      await until('the op started', () => outputLines(server).includes('started'));
      server.send('kill_command', { signal: 'SIGKILL', pid: 0 });
      expect(await statusOf(server, 'test')).toMatchObject({ status: 'error', exit_code: 137, message: 'killed by SIGKILL' });
    });

    it('stop with nothing running answers, as the Go agent, with a status for the op stop', async () => {
      const { server } = await startTestAgent(defer);
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('stop');
      expect(await statusOf(server, 'stop')).toEqual({ status: 'ok', command: 'stop', exit_code: 0, message: 'no command running' });
    });
  });

  describe('ops it cannot run', () => {
    it('answers an unknown op and a disabled op with status error', async () => {
      const { server } = await startTestAgent(defer, { ops: { reboot: null } });
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('deploy-everything');
      expect(await statusOf(server, 'deploy-everything')).toEqual({ status: 'error', command: 'deploy-everything', exit_code: 127, message: 'unknown op "deploy-everything"' });
      server.command('reboot');
      expect(await statusOf(server, 'reboot')).toMatchObject({ status: 'error', exit_code: 127, message: expect.stringContaining('disabled') });
    });

    it('reports a command that cannot be started', async () => {
      const { server } = await startTestAgent(defer, { ops: { pull: ['/nonexistent/git', 'pull'] } });
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('pull');
      expect(await statusOf(server, 'pull')).toMatchObject({ status: 'error', exit_code: 127, message: expect.stringContaining('cannot run /nonexistent/git') });
    });
  });

  describe('restarts', () => {
    it('after a successful switch it restarts (in-process: a fresh register on a new connection)', async () => {
      const { server } = await startTestAgent(defer, { ops: { switch: 'echo "activating the configuration..."' } });
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('switch');
      await until('a second register', () => server.of('register').length === 2);
      expect(server.of('status', 1)).toEqual([{ status: 'ok', command: 'switch', exit_code: 0, generation: TEST_FACTS.generation }]);
      expect(server.closeCodes[0]).toBe(1000);
      expect(server.of('register', 2)).toHaveLength(1);
    });

    it('with NIXFLEET_RESTART_AFTER_SWITCH=stay it keeps its connection after a switch', async () => {
      const { server } = await startTestAgent(defer, { env: { NIXFLEET_RESTART_AFTER_SWITCH: 'stay' }, ops: { switch: 'echo switched' } });
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('switch');
      await statusOf(server, 'switch');
      const heartbeats = server.of('heartbeat').length;
      // Nothing is to happen: three heartbeats later the agent is still on its first connection.
      await until('three more heartbeats', () => server.of('heartbeat').length >= heartbeats + 3);
      expect(server.connections).toBe(1);
      expect(server.of('register')).toHaveLength(1);
    });

    it('a generation reported by the op runner is registered after the restart', async () => {
      const { server } = await startTestAgent(defer, {
        deps: {
          opRunner: ({ op, onLine }) => {
            setTimeout(() => onLine(`simulated ${op}`, 'stdout'), 5);
            return { pid: null, done: new Promise((resolve) => setTimeout(() => resolve({ exitCode: 0, signal: null, stopped: false, generation: 'fff0001' }), 20)), stop() {}, kill() {} };
          },
        },
      });
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('pull-switch');
      await until('a second register', () => server.of('register').length === 2);
      expect(server.of('output', 1)).toEqual([{ line: 'simulated pull-switch', stream: 'stdout', command: 'pull-switch', is_error: false, seq: 1 }]);
      expect(server.of('status', 1)).toEqual([{ status: 'ok', command: 'pull-switch', exit_code: 0, generation: 'fff0001' }]);
      expect(server.of('register', 2)[0]!.generation).toBe('fff0001');
    });

    it('restart stops the running op, confirms, and restarts', async () => {
      const { server, dir } = await startTestAgent(defer, { ops: { test: ['sh', '{repo_dir}/slow.sh'] } });
      script(dir, 'slow.sh', 'echo started\nexec sleep 300\n');
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('test');
      await until('the op started', () => outputLines(server).includes('started'));
      server.command('restart');
      await until('a second register', () => server.of('register').length === 2);
      expect(server.of('status', 1)).toEqual([
        expect.objectContaining({ command: 'test', status: 'error', exit_code: 130 }),
        { status: 'ok', command: 'restart', exit_code: 0 },
      ]);
    });

    it('reboot while busy stops the running op, reports it, then reboots', async () => {
      const { server, dir } = await startTestAgent(defer, { ops: { test: ['sh', '{repo_dir}/slow.sh'], reboot: 'echo "rebooting now"' } });
      script(dir, 'slow.sh', 'echo started\nexec sleep 300\n');
      await until('registered', () => server.of('heartbeat').length >= 1);
      server.command('test');
      await until('the op started', () => outputLines(server).includes('started'));
      server.command('reboot');
      await statusOf(server, 'reboot');
      expect(server.of('status').map((status) => [status.command, status.exit_code])).toEqual([
        ['test', 130],
        ['reboot', 0],
      ]);
      expect(server.of('output').filter((output) => output.command === 'reboot')).toEqual([{ line: 'rebooting now', stream: 'stdout', command: 'reboot', is_error: false, seq: 1 }]);
    });
  });
});
