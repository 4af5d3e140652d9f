#!/usr/bin/env node
// A stand-in for a real op, for the demo and the tests: `node dist/demo/simulated-op.js <op>
// [--duration-scale X] [--fail-rate Y] [--seed N] [--hostname H] [--host-type nixos|macos]`
// prints the output the op would print (output-lines.ts) over a realistic duration, exits 0 or,
// at the fail rate, with the op's failure code; on SIGTERM/SIGINT it says so and dies of it.
// The demo's agents say which commits the op moves between (NIXFLEET_SIM_FROM, NIXFLEET_SIM_TO),
// so a pull prints the simulated repository's own hashes.
import { hostname as osHostname } from 'node:os';
import { outputLines, type DemoOp, type Outcome, type OutputContext } from './output-lines.js';
import { Rng, seededRandom } from './random.js';

interface Options {
  op: string;
  /** Multiplies every duration: 0.01 makes a 60 s switch take 0.6 s. */
  durationScale: number;
  /** Chance that the op fails. */
  failRate: number;
  seed: number | null;
  hostname: string;
  hostType: 'nixos' | 'macos';
  /** The commit the host is at, and the one the op moves to (random when not given). */
  fromCommit: string | null;
  toCommit: string | null;
}

const USAGE = 'usage: simulated-op <op> [--duration-scale X] [--fail-rate Y] [--seed N] [--hostname H] [--host-type nixos|macos]\n' +
  '  (defaults from NIXFLEET_SIM_DURATION_SCALE, NIXFLEET_SIM_FAIL_RATE, NIXFLEET_HOSTNAME, NIXFLEET_SIM_HOST_TYPE;\n' +
  '   NIXFLEET_SIM_FROM and NIXFLEET_SIM_TO name the commits the op moves between)';

/** Seconds an op takes at scale 1, as [min, max]. */
const DURATIONS: Readonly<Record<string, readonly [number, number]>> = {
  pull: [2, 6],
  switch: [25, 90],
  'pull-switch': [30, 100],
  test: [8, 25],
  rollback: [10, 30],
  update: [5, 15],
  'force-update': [8, 20],
  'refresh-git': [2, 5],
  'refresh-lock': [1, 4],
  'refresh-system': [3, 8],
  'refresh-all': [6, 15],
  'check-version': [0.3, 1],
  restart: [1, 3],
  stop: [1, 3],
  reboot: [1, 3],
};

/** How each op's tool exits when it fails (git dies with 128; the rest with 1). */
const FAILURE_EXIT_CODES: Readonly<Record<string, number>> = { pull: 128, 'refresh-git': 128 };

function parseOptions(args: string[], env: NodeJS.ProcessEnv): Options {
  const [op, ...rest] = args;
  if (!op || op.startsWith('-')) usage('no op given');
  const number = (raw: string | undefined, name: string, min: number, max: number): number => {
    const value = Number(raw);
    if (raw === undefined || raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) usage(`${name} must be a number from ${min} to ${max}`);
    return value;
  };
  const options: Options = {
    op,
    durationScale: env.NIXFLEET_SIM_DURATION_SCALE ? number(env.NIXFLEET_SIM_DURATION_SCALE, 'NIXFLEET_SIM_DURATION_SCALE', 0, 1000) : 1,
    failRate: env.NIXFLEET_SIM_FAIL_RATE ? number(env.NIXFLEET_SIM_FAIL_RATE, 'NIXFLEET_SIM_FAIL_RATE', 0, 1) : 0.05,
    seed: null,
    hostname: env.NIXFLEET_HOSTNAME || osHostname().split('.')[0] || 'localhost',
    hostType: env.NIXFLEET_SIM_HOST_TYPE === 'macos' || env.NIXFLEET_SIM_HOST_TYPE === 'nixos' ? env.NIXFLEET_SIM_HOST_TYPE : process.platform === 'darwin' ? 'macos' : 'nixos',
    fromCommit: commitOrNull(env.NIXFLEET_SIM_FROM),
    toCommit: commitOrNull(env.NIXFLEET_SIM_TO),
  };
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i];
    const value = rest[i + 1];
    if (flag === '--duration-scale') options.durationScale = number(value, flag, 0, 1000);
    else if (flag === '--fail-rate') options.failRate = number(value, flag, 0, 1);
    else if (flag === '--seed') options.seed = number(value, flag, 0, 2 ** 32);
    else if (flag === '--hostname' && value) options.hostname = value;
    else if (flag === '--host-type' && (value === 'nixos' || value === 'macos')) options.hostType = value;
    else usage(`unknown or incomplete option ${flag}`);
  }
  if (!DURATIONS[options.op]) usage(`unknown op "${options.op}" (known: ${Object.keys(DURATIONS).join(', ')})`);
  return options;
}

/** A short git hash, or null for anything else (the simulator then makes one up). */
function commitOrNull(raw: string | undefined): string | null {
  return raw !== undefined && /^[0-9a-f]{7,40}$/.test(raw) ? raw : null;
}

function usage(problem: string): never {
  process.stderr.write(`simulated-op: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

/** The lines of ops output-lines.ts knows, and plausible ones for the agent-only ops. */
function linesFor(op: string, ctx: OutputContext, rng: Rng): string[] {
  const failed = ctx.outcome !== 'success';
  const inputs: Record<string, string> = { nixpkgs: 'NixOS/nixpkgs', 'home-manager': 'nix-community/home-manager', agenix: 'ryantm/agenix', disko: 'nix-community/disko' };
  const flakeRef = (input: string) => `github:${inputs[input] ?? input}/${rng.gitHash(40)}`;
  switch (op) {
    case 'update':
    case 'force-update': {
      const lines = [`$ nix flake update${op === 'force-update' ? ' --refresh' : ''}`];
      if (failed) return [...lines, "error: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/commits/nixos-24.11': HTTP error 403 (rate limit exceeded)"];
      for (const input of rng.sample(Object.keys(inputs), rng.int(1, 3))) {
        lines.push(`• Updated input '${input}':`, `    '${flakeRef(input)}' (2024-11-${rng.int(10, 19)})`, `  → '${flakeRef(input)}' (2024-11-${rng.int(20, 28)})`);
      }
      return lines;
    }
    case 'refresh-git': {
      const lines = ['From github.com:acme/fleet-config'];
      if (failed) return [...lines, "fatal: unable to access 'https://github.com/acme/fleet-config/': Could not resolve host: github.com"];
      return [...lines, `${rng.int(0, 4)} commit(s) behind origin/main`];
    }
    case 'refresh-lock':
      if (failed) return ["error: getting status of '/var/lib/nixfleet/repo/flake.nix': No such file or directory"];
      return ['Resolved URL:  path:/var/lib/nixfleet/repo', `Locked URL:    path:/var/lib/nixfleet/repo?lastModified=${1732600000 + rng.int(0, 99999)}`, 'Inputs:', `├───home-manager: ${flakeRef('home-manager')}`, `└───nixpkgs: ${flakeRef('nixpkgs')}`];
    case 'refresh-system': {
      const running = `/nix/store/${rng.storeHash()}-nixos-system-${ctx.hostname}-24.11`;
      if (failed) return [`running:    ${running}`, `error: flake 'path:/var/lib/nixfleet/repo' does not provide attribute 'nixosConfigurations.${ctx.hostname}'`];
      return [`running:    ${running}`, `configured: ${running}`, 'the running system is the configured one'];
    }
    case 'refresh-all':
      return [...linesFor('refresh-git', { ...ctx, outcome: 'success' }, rng), ...linesFor('refresh-lock', { ...ctx, outcome: 'success' }, rng), ...linesFor('refresh-system', ctx, rng)];
    case 'check-version':
      return [`${ctx.hostType === 'macos' ? 'darwin' : 'nixos'}-version: 24.11.20241126.${ctx.toCommit} (Vicuna)`, 'nix (Nix) 2.24.10'];
    default:
      return outputLines(op as DemoOp, ctx, rng).map((line) => line.replace(/\n$/, ''));
  }
}

/** Nix and git print their progress and errors on stderr; keep plain progress on stdout so a demo is not all red. */
function streamOf(line: string): 'stdout' | 'stderr' {
  return /error|fatal|FAILED|failed|warning|waiting for lock/i.test(line) ? 'stderr' : 'stdout';
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const rng = new Rng(options.seed === null ? Math.random : seededRandom(options.seed));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${options.op}: interrupted by ${signal}\n`);
      // Die of the signal, as a real tool does, so the agent sees how it ended.
      process.kill(process.pid, signal);
    });
  }
  const outcome: Outcome = rng.chance(options.failRate) ? 'error' : 'success';
  const ctx: OutputContext = { hostname: options.hostname, hostType: options.hostType, fromCommit: options.fromCommit ?? rng.gitHash(), toCommit: options.toCommit ?? rng.gitHash(), outcome };
  const lines = linesFor(options.op, ctx, rng);
  const [min, max] = DURATIONS[options.op]!;
  const totalMs = rng.between(min, max) * 1000 * options.durationScale;
  // Irregular gaps: most lines come quickly, a few after a long build step.
  const weights = lines.map(() => (rng.chance(0.15) ? rng.between(3, 8) : rng.between(0.1, 1)));
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0) || 1;
  for (let i = 0; i < lines.length; i++) {
    await sleep((weights[i]! / weightSum) * totalMs);
    const line = lines[i]!;
    await write(streamOf(line) === 'stderr' ? process.stderr : process.stdout, `${line}\n`);
  }
  process.exitCode = outcome === 'success' ? 0 : (FAILURE_EXIT_CODES[options.op] ?? 1);
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => (stream.write(text) ? resolve() : stream.once('drain', () => resolve())));
}

await main();
