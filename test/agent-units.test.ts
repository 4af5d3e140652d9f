// The agent's pure parts: configuration, ops resolution, line splitting, the output buffer,
// metrics parsing and the decoder of server messages.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AgentConfigError, parseAgentConfig } from '../src/agent/config.js';
import { LineSplitter, MAX_LINE_CHARS } from '../src/agent/line-splitter.js';
import { cpuPercent, parseMeminfo, parseProcStat } from '../src/agent/metrics.js';
import { defaultOps, OpUnavailableError, parseOpsFile, resolveOpCommand } from '../src/agent/ops.js';
import { OutputBuffer } from '../src/agent/output-buffer.js';
import { decodeServerMessage } from '../src/agent/server-messages.js';
import { UpdateStatus } from '../src/agent/update-status.js';
import { AGENT_VERSION } from '../src/agent/version.js';

const BASE = { NIXFLEET_URL: 'wss://fleet.example/ws', NIXFLEET_TOKEN: 't0ken' };
const machine = () => 'web-01.example.com';

describe('parseAgentConfig', () => {
  it('applies the defaults of the original agent', () => {
    const config = parseAgentConfig(BASE, 'linux', machine);
    expect(config).toMatchObject({
      url: 'wss://fleet.example/ws',
      token: 't0ken',
      heartbeatIntervalMs: 5000,
      hostname: 'web-01',
      hostType: 'nixos',
      repoUrl: '',
      repoDir: '',
      branch: 'main',
      location: '',
      deviceType: '',
      themeColor: '',
      logLevel: 'info',
      opsFile: null,
      stopGraceMs: 3000,
      restartAfterSwitch: 'exit',
      restartExitCode: 101,
      outputBufferLines: 10_000,
    });
  });

  it('exits with 0 to restart on macOS, where launchd restarts on any exit', () => {
    const config = parseAgentConfig({ ...BASE, HOME: '/Users/ci', NIXFLEET_REPO_URL: 'git@github.com:acme/fleet' }, 'darwin', machine);
    expect(config).toMatchObject({ hostType: 'macos', restartExitCode: 0, repoDir: '/Users/ci/.local/share/nixfleet/repo' });
  });

  it.each([
    ['https://fleet.example/ws', 'wss://fleet.example/ws'],
    ['http://10.0.0.1:8000', 'ws://10.0.0.1:8000/ws'],
    ['ws://fleet.example', 'ws://fleet.example/ws'],
    ['wss://fleet.example/custom/ws', 'wss://fleet.example/custom/ws'],
  ])('maps NIXFLEET_URL %s to %s', (raw, url) => {
    expect(parseAgentConfig({ ...BASE, NIXFLEET_URL: raw }, 'linux', machine).url).toBe(url);
  });

  it('accepts fractional intervals and reads every setting', () => {
    const config = parseAgentConfig(
      {
        ...BASE,
        NIXFLEET_INTERVAL: '0.2',
        NIXFLEET_HOSTNAME: 'db-1',
        NIXFLEET_REPO_DIR: '/srv/fleet',
        NIXFLEET_BRANCH: 'prod',
        NIXFLEET_THEME_COLOR: '#4F8cc9',
        NIXFLEET_LOG_LEVEL: 'DEBUG',
        NIXFLEET_STOP_GRACE: '0.5',
        NIXFLEET_RESTART_AFTER_SWITCH: 'stay',
        NIXFLEET_OUTPUT_BUFFER_LINES: '50',
        NIXFLEET_OPS_FILE: '/etc/nixfleet/ops.json',
      },
      'linux',
      machine,
    );
    expect(config).toMatchObject({ heartbeatIntervalMs: 200, hostname: 'db-1', repoDir: '/srv/fleet', branch: 'prod', themeColor: '#4F8cc9', logLevel: 'debug', stopGraceMs: 500, restartAfterSwitch: 'stay', outputBufferLines: 50, opsFile: '/etc/nixfleet/ops.json' });
  });

  it.each([
    [{ NIXFLEET_TOKEN: '' }, 'NIXFLEET_TOKEN'],
    [{ NIXFLEET_URL: '' }, 'NIXFLEET_URL'],
    [{ NIXFLEET_URL: 'ftp://fleet.example' }, 'NIXFLEET_URL'],
    [{ NIXFLEET_URL: 'not a url' }, 'NIXFLEET_URL'],
    [{ NIXFLEET_INTERVAL: '0' }, 'NIXFLEET_INTERVAL'],
    [{ NIXFLEET_INTERVAL: 'five' }, 'NIXFLEET_INTERVAL'],
    [{ NIXFLEET_THEME_COLOR: 'blue' }, 'NIXFLEET_THEME_COLOR'],
    [{ NIXFLEET_LOG_LEVEL: 'verbose' }, 'NIXFLEET_LOG_LEVEL'],
    [{ NIXFLEET_STOP_GRACE: '-1' }, 'NIXFLEET_STOP_GRACE'],
    [{ NIXFLEET_RESTART_AFTER_SWITCH: 'reboot' }, 'NIXFLEET_RESTART_AFTER_SWITCH'],
    [{ NIXFLEET_OUTPUT_BUFFER_LINES: '1.5' }, 'NIXFLEET_OUTPUT_BUFFER_LINES'],
  ])('rejects %o naming %s', (override, variable) => {
    let error: unknown;
    try {
      parseAgentConfig({ ...BASE, ...override }, 'linux', machine);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(AgentConfigError);
    expect((error as AgentConfigError).variable).toBe(variable);
    expect((error as AgentConfigError).message).toContain(variable);
  });
});

describe('ops', () => {
  const vars = { repo_dir: '/srv/fleet', repo_url: 'git@github.com:acme/fleet', hostname: 'web-01', branch: 'main' };

  it('switches to the host flake with nixos-rebuild on NixOS and home-manager on macOS', () => {
    expect(resolveOpCommand(defaultOps('nixos'), 'switch', vars)).toEqual(['sudo', '-n', 'nixos-rebuild', 'switch', '--flake', '/srv/fleet#web-01']);
    expect(resolveOpCommand(defaultOps('macos'), 'switch', vars)).toEqual(['home-manager', 'switch', '--flake', '/srv/fleet#web-01']);
    expect(resolveOpCommand(defaultOps('nixos'), 'rollback', vars)).toEqual(['sudo', '-n', 'nixos-rebuild', 'switch', '--rollback']);
  });

  it('has a command for every op but the built-in stop and restart', () => {
    for (const op of ['pull', 'switch', 'pull-switch', 'test', 'rollback', 'update', 'refresh-git', 'refresh-lock', 'refresh-system', 'refresh-all', 'force-update', 'check-version', 'reboot']) {
      for (const hostType of ['nixos', 'macos'] as const) expect(resolveOpCommand(defaultOps(hostType), op, vars).length).toBeGreaterThan(0);
    }
  });

  it('quotes placeholder values in shell strings so a value never becomes shell syntax', () => {
    const table = parseOpsFile(JSON.stringify({ ops: { pull: 'echo {hostname} ${HOME} {op}' } }), 'ops.json');
    const argv = resolveOpCommand(table, 'pull', { ...vars, hostname: "x'; rm -rf /; '" });
    expect(argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(argv[2]).toBe(`echo 'x'\\''; rm -rf /; '\\''' \${HOME} 'pull'`);
  });

  it('substitutes placeholders inside argv entries without quoting', () => {
    const table = parseOpsFile(JSON.stringify({ ops: { test: ['run-tests', '--host={hostname}', '{repo_dir}/tests', '{branch}'] } }), 'ops.json');
    expect(resolveOpCommand(table, 'test', vars)).toEqual(['run-tests', '--host=web-01', '/srv/fleet/tests', 'main']);
  });

  it('refuses an op without a command, a disabled op, and an op that needs the repo', () => {
    const table = parseOpsFile(JSON.stringify({ ops: { reboot: null } }), 'ops.json');
    expect(() => resolveOpCommand(table, 'reboot', vars)).toThrow(/disabled/);
    expect(() => resolveOpCommand({}, 'pull', vars)).toThrow(OpUnavailableError);
    expect(() => resolveOpCommand(defaultOps('nixos'), 'pull', { ...vars, repo_dir: '' })).toThrow(/NIXFLEET_REPO_DIR/);
  });

  it.each([
    ['not json', /not JSON/],
    ['{"switch": ["x"]}', /expected \{"ops"/],
    ['{"ops": {"deploy": ["x"]}}', /unknown op "deploy"/],
    ['{"ops": {"stop": ["x"]}}', /carried out by the agent/],
    ['{"ops": {"switch": []}}', /non-empty argv/],
    ['{"ops": {"switch": [1]}}', /non-empty argv/],
  ])('rejects the ops file %s', (text, message) => {
    expect(() => parseOpsFile(text, 'ops.json')).toThrow(message);
  });
});

describe('LineSplitter', () => {
  it('splits on \\n across chunks, keeps a partial line until the end, and shows what a terminal shows of \\r', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    splitter.push(Buffer.from('one\r\ntw'));
    splitter.push(Buffer.from('o\n10%\r50%\r100%\nlast'));
    expect(lines).toEqual(['one', 'two', '100%']);
    splitter.end();
    expect(lines).toEqual(['one', 'two', '100%', 'last']);
  });

  it('decodes a UTF-8 character split between chunks', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    const bytes = Buffer.from('→ done\n');
    splitter.push(bytes.subarray(0, 1));
    splitter.push(bytes.subarray(1));
    expect(lines).toEqual(['→ done']);
  });

  it('cuts a line that never ends into pieces', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    splitter.push('x'.repeat(MAX_LINE_CHARS * 2 + 5));
    expect(lines.map((line) => line.length)).toEqual([MAX_LINE_CHARS, MAX_LINE_CHARS]);
    splitter.end();
    expect(lines.at(-1)).toBe('xxxxx');
  });
});

describe('OutputBuffer', () => {
  it('numbers lines from 1 and drops the oldest past its capacity', () => {
    const buffer = new OutputBuffer(3);
    for (let i = 1; i <= 5; i++) buffer.push({ line: `l${i}`, stream: 'stdout', command: 'test', is_error: false });
    expect(buffer.lastSeq).toBe(5);
    expect(buffer.firstSeq).toBe(3);
    expect(buffer.dropped).toBe(2);
    expect(buffer.get(2)).toBeUndefined();
    expect([3, 4, 5].map((seq) => buffer.get(seq)?.line)).toEqual(['l3', 'l4', 'l5']);
    expect(buffer.get(4)?.seq).toBe(4);
  });
});

describe('metrics parsing', () => {
  it('computes cpu % from two /proc/stat samples and ram/swap % from /proc/meminfo', () => {
    const before = parseProcStat('cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n');
    const after = parseProcStat('cpu  150 0 125 1000 25 0 0 0 0 0\n');
    expect(cpuPercent(before, after)).toBe(25);
    expect(parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 375 kB\nSwapTotal: 400 kB\nSwapFree: 300 kB\n')).toEqual({ ram: 62.5, swap: 25 });
    expect(parseMeminfo('MemTotal: 1000 kB\nMemAvailable: 1000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n')).toEqual({ ram: 0, swap: 0 });
  });
});

describe('UpdateStatus', () => {
  it('is null until a checking op ran, then leaves git empty as the original does', () => {
    const status = new UpdateStatus();
    status.record('switch', 0, '', new Date(0));
    expect(status.payload()).toBeNull();
    status.record('refresh-system', 10, 'the running system is not the configured one', new Date(0));
    status.record('test', 1, '1 of 4 checks failed', new Date(0));
    expect(status.payload()).toEqual({
      git: { status: '', message: '', checked_at: '' },
      lock: { status: '', message: '', checked_at: '' },
      system: { status: 'outdated', message: 'the running system is not the configured one', checked_at: '1970-01-01T00:00:00.000Z' },
      tests: { status: 'error', message: '1 of 4 checks failed', checked_at: '1970-01-01T00:00:00.000Z' },
    });
  });
});

describe('decodeServerMessage', () => {
  it('decodes the three server messages and keeps registered extension fields only when present', () => {
    expect(decodeServerMessage('{"type":"registered","payload":{"host_id":"web-01"}}')).toEqual({ type: 'registered', payload: { host_id: 'web-01' } });
    expect(decodeServerMessage('{"type":"registered","payload":{"host_id":"web-01","command":null,"output_seq":0}}')).toEqual({ type: 'registered', payload: { host_id: 'web-01', command: null, output_seq: 0 } });
    expect(decodeServerMessage('{"type":"command","payload":{"command":"switch","command_id":"c1"}}')).toEqual({ type: 'command', payload: { command: 'switch', command_id: 'c1' } });
    expect(decodeServerMessage('{"type":"kill_command","payload":{"signal":"SIGKILL","pid":0}}')).toEqual({ type: 'kill_command', payload: { signal: 'SIGKILL', pid: 0 } });
  });

  it.each(['nope', '[]', '{"payload":{}}', '{"type":"hello","payload":{}}', '{"type":"command","payload":{}}', '{"type":"kill_command","payload":{"signal":"SIGHUP","pid":1}}'])('ignores %s', (text) => {
    expect(decodeServerMessage(text).type).toBe('ignored');
  });
});

it('reports the version of the package', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  expect(AGENT_VERSION).toBe(pkg.version);
});
