// Our agent as a child process: the bundled `dist/agent/nixfleet-agent.mjs` run with plain node,
// configured by environment as on a host, its ops mapped to small shell scripts in a temp dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './test-server.js';

export const AGENT_BUNDLE = fileURLToPath(new URL('../../dist/agent/nixfleet-agent.mjs', import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  dir: string;
  stderr(): string;
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface AgentProcessOptions {
  url: string;
  token: string;
  hostname: string;
  /** op → shell script body, written to `<dir>/<op>.sh` and mapped in the ops file. */
  scripts: Record<string, string>;
  env?: Record<string, string>;
  /** Run under this command prefix (e.g. `ip netns exec ns`). */
  prefix?: string[];
  /** Reuse a directory (a restarted agent on the same host). */
  dir?: string;
}

export function spawnAgent(options: AgentProcessOptions, defer: (cleanup: () => unknown) => void): AgentProcess {
  const dir = options.dir ?? tempDir('nixfleet-agent-proc-');
  if (!options.dir) defer(() => rmSync(dir, { recursive: true, force: true }));
  const ops: Record<string, string[]> = {};
  for (const [op, body] of Object.entries(options.scripts)) {
    writeFileSync(join(dir, `${op}.sh`), body);
    ops[op] = ['sh', join(dir, `${op}.sh`)];
  }
  writeFileSync(join(dir, 'ops.json'), JSON.stringify({ ops }));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NIXFLEET_URL: options.url,
    NIXFLEET_TOKEN: options.token,
    NIXFLEET_HOSTNAME: options.hostname,
    NIXFLEET_INTERVAL: '0.2',
    NIXFLEET_STOP_GRACE: '1',
    NIXFLEET_REPO_DIR: dir,
    NIXFLEET_OPS_FILE: join(dir, 'ops.json'),
    NIXFLEET_LOG_LEVEL: 'info',
    ...options.env,
  };
  const [command, ...args] = [...(options.prefix ?? []), process.execPath, AGENT_BUNDLE];
  const child = spawn(command!, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  defer(() => kill('SIGKILL'));
  return { child, dir, stderr: () => stderr, exited, kill };
}

/** Whether a process exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Pids of the processes in process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(fields[2]) === pgid && fields[0] !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);
}
