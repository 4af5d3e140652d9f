// Packaging, kept honest without a Nix build: the flake and the NixOS / Home Manager modules
// (flake.nix, nix/), the plain systemd units (contrib/systemd), the container (Dockerfile,
// contrib/compose.yml) and their documentation (docs/INSTALL.md). What needs a tool that is
// missing is skipped, with the reason in the test's name:
//   nix-instantiate        Debian's nix-bin: parses every .nix file, evaluates the lock backfill
//   a nixpkgs lib          NIXFLEET_NIXPKGS_LIB=/path/to/nixpkgs/lib, or <nixpkgs> on NIX_PATH:
//                          the modules evaluated with nixpkgs' module system (nix/tests/eval-modules.nix),
//                          the packages' buildNpmPackage arguments (nix/tests/eval-packages.nix), and
//                          the agent package's build and install phases run in a temporary directory
//   systemd-analyze        verifies the contrib units
//   docker compose         (or docker-compose) parses contrib/compose.yml
//   nginx                  checks contrib/docker/nginx.conf
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './support/cleanups.js';
import { freePort } from './support/ports.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const defer = cleanupAfterEach();
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return null;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end without blocking the event loop (a test server may be serving). */
function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A port nothing listens on. */
const closedPort = freePort;

// --- what is available ---------------------------------------------------------------------

const nixInstantiate = which('nix-instantiate');
const systemdAnalyze = which('systemd-analyze');
const nginx = which('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : null);

/** An expression for nixpkgs' lib, or null. */
function findNixpkgsLib(): string | null {
  const fromEnv = process.env.NIXFLEET_NIXPKGS_LIB;
  if (fromEnv) {
    const dir = existsSync(join(fromEnv, 'lib', 'default.nix')) ? join(fromEnv, 'lib') : fromEnv;
    return existsSync(join(dir, 'default.nix')) ? `import ${dir}` : null;
  }
  if (!nixInstantiate) return null;
  const found = spawnSync(nixInstantiate, ['--find-file', 'nixpkgs/lib'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? `import ${found.stdout.trim()}` : null;
}
const nixpkgsLib = findNixpkgsLib();

function composeCommand(): string[] | null {
  const docker = which('docker');
  if (docker && spawnSync(docker, ['compose', 'version'], { encoding: 'utf8' }).status === 0) return [docker, 'compose'];
  const v1 = which('docker-compose');
  if (v1 && spawnSync(v1, ['version'], { encoding: 'utf8' }).status === 0) return [v1];
  return null;
}
const compose = composeCommand();

const skipBecause = (missing: string | null) => (missing ? ` (SKIPPED: ${missing})` : '');
const NO_NIX = nixInstantiate ? null : 'nix-instantiate not found: apt-get install nix-bin';
const NO_LIB = !nixInstantiate ? NO_NIX : nixpkgsLib ? null : 'no nixpkgs lib: set NIXFLEET_NIXPKGS_LIB=/path/to/nixpkgs/lib or put <nixpkgs> on NIX_PATH';
const NO_SYSTEMD = systemdAnalyze ? null : 'systemd-analyze not found';
const NO_COMPOSE = compose ? null : 'neither `docker compose` nor docker-compose is installed';
const NO_NGINX = nginx ? null : 'nginx not found';

// --- the agent bundle, built as `npm run build` builds it ---------------------------------

let work: string;
let bundle: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nixfleet-packaging-'));
  bundle = join(work, 'nixfleet-agent.mjs');
  execFileSync(process.execPath, ['scripts/build-agent.mjs', '--outfile', bundle], { cwd: ROOT, stdio: 'pipe' });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A server with an agent token for host `web-1`; the agent's ws:// URL. */
async function serverWithAgentToken(): Promise<{ server: TestServer; url: string; token: string }> {
  const server = await startTestServer();
  defer(() => server.dispose());
  const { token } = await server.auth.createToken({ name: 'packaging agent', role: 'agent', hostId: 'web-1' }, 'tests');
  return { server, url: `${server.url.replace(/^http/, 'ws')}/ws`, token };
}

// --- unit files ----------------------------------------------------------------------------

type Unit = Record<string, Array<[string, string]>>;

/** A systemd unit as [section] → [key, value] lines in order (comments and blank lines dropped). */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      unit[section] ??= [];
      continue;
    }
    const at = line.indexOf('=');
    if (at < 0) throw new Error(`not key=value: ${line}`);
    (unit[section] ??= []).push([line.slice(0, at), line.slice(at + 1)]);
  }
  return unit;
}

function values(unit: Unit, section: string, key: string): string[] {
  return (unit[section] ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

function value(unit: Unit, section: string, key: string): string | undefined {
  return values(unit, section, key).at(-1);
}

const unitFile = (name: string) => parseUnit(read(`contrib/systemd/${name}`));

// --- (a) Nix files ----------------------------------------------------------------------------

function nixFiles(): string[] {
  const inNix = readdirSync(join(ROOT, 'nix'), { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.nix'))
    .map((path) => join('nix', path));
  return ['flake.nix', ...inNix].sort();
}

describe('Nix files', () => {
  it('are the flake, the packages, the modules and their tests', () => {
    const files = nixFiles();
    for (const expected of ['flake.nix', 'nix/package.nix', 'nix/agent.nix', 'nix/lockfile.nix', 'nix/modules/nixfleet-sync.nix', 'nix/modules/nixfleet-agent.nix', 'nix/modules/home-manager-agent.nix']) {
      expect(files).toContain(expected);
    }
  });

  it(`parse with nix-instantiate --parse${skipBecause(NO_NIX)}`, { skip: !!NO_NIX }, async () => {
    for (const file of nixFiles()) {
      const result = await run(nixInstantiate!, ['--parse', file]);
      expect(result.stderr, file).toBe('');
      expect(result.status, `${file}: ${result.stderr}`).toBe(0);
    }
  });

  it('point at the files the build makes and the lock it reads', () => {
    const buildScript = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.build ?? '';
    expect(buildScript).toContain('node scripts/build-agent.mjs');
    // The bundle's default path, which the packages and the units name.
    expect(read('scripts/build-agent.mjs')).toContain("'dist/agent/nixfleet-agent.mjs'");
    expect(read('nix/package.nix')).toContain('dist/agent/nixfleet-agent.mjs');
    expect(read('nix/package.nix')).toContain('dist/server/main.js');
    expect(read('nix/agent.nix')).toContain('scripts/build-agent.mjs');
    expect(existsSync(join(ROOT, 'src/server/main.ts'))).toBe(true);
    expect(existsSync(join(ROOT, 'src/server/admin-cli.ts'))).toBe(true);
    // The native module is built by `npm rebuild`, and our own prepare is not run twice.
    expect(read('nix/package.nix')).toMatch(/npmPackFlags = \[ "--ignore-scripts" \]/);
    expect(read('nix/package.nix')).toMatch(/python3/);
  });

  it('say where npmDepsHash comes from while it is a placeholder', () => {
    const pkg = read('nix/package.nix');
    const hash = /npmDepsHash = ([^;]+);/.exec(pkg)?.[1];
    expect(hash).toBeDefined();
    if (hash === 'lib.fakeHash') {
      expect(pkg).toMatch(/nix build \.#nixfleet-sync/);
      expect(read('docs/INSTALL.md')).toContain('npmDepsHash = lib.fakeHash');
    } else {
      expect(hash).toMatch(/^"sha256-[A-Za-z0-9+/]{43}="$/);
    }
  });

  it(`backfill a registry URL for every package of the lock${skipBecause(NO_NIX)}`, { skip: !!NO_NIX }, async () => {
    const result = await run(nixInstantiate!, ['--readonly-mode', '--eval', '--strict', '--json', '--expr', `import ${join(ROOT, 'nix/lockfile.nix')} ${join(ROOT, 'package-lock.json')}`]);
    expect(result.status, result.stderr).toBe(0);
    type Entry = { version?: string; integrity?: string; resolved?: string; name?: string; link?: boolean; inBundle?: boolean };
    const original = JSON.parse(read('package-lock.json')) as { packages: Record<string, Entry> };
    const filled = JSON.parse(result.stdout) as { packages: Record<string, Entry> };
    expect(Object.keys(filled.packages).sort()).toEqual(Object.keys(original.packages).sort());
    let registryEntries = 0;
    for (const [path, entry] of Object.entries(original.packages)) {
      const out = filled.packages[path]!;
      // Nothing but `resolved` changes.
      expect({ ...out, resolved: entry.resolved }).toEqual({ ...entry, resolved: entry.resolved });
      if (path === '' || entry.link || entry.inBundle || !entry.version || !entry.integrity) continue;
      if (entry.resolved) {
        expect(out.resolved).toBe(entry.resolved);
        continue;
      }
      const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
      const base = name.slice(name.lastIndexOf('/') + 1);
      expect(out.resolved, path).toBe(`https://registry.npmjs.org/${name}/-/${base}-${entry.version}.tgz`);
      registryEntries++;
    }
    // Every dependency is fetchable by fetchNpmDeps, not just some.
    expect(registryEntries + Object.values(original.packages).filter((e) => e.resolved).length).toBe(Object.keys(original.packages).length - 1);
  });
});

// --- the modules, evaluated by nixpkgs' module system ---------------------------------------

type EvalModule = 'nixos-sync' | 'nixos-agent' | 'home-manager-agent';
interface Service {
  serviceConfig: Record<string, unknown>;
  environment: Record<string, string>;
  path: unknown[];
  restartIfChanged: boolean;
  wantedBy: string[];
  after: string[];
}
interface Evaluated {
  failedAssertions: string[];
  optionNames: string[];
  warnings?: string[];
  services?: Record<string, Service>;
  sudoRules?: Array<{ users: string[]; runAs: string; commands: Array<{ command: string; options: string[] }> }>;
  users?: Record<string, Record<string, unknown>>;
  firewall?: number[];
  launchd?: Record<string, { enable: boolean; config: Record<string, unknown> }>;
  opsJson?: string;
}

async function evalModule(module: EvalModule, config: unknown, viaFlake = false): Promise<Evaluated> {
  const result = await run(
    nixInstantiate!,
    ['--readonly-mode', '--eval', '--strict', '--json', 'nix/tests/eval-modules.nix', '--arg', 'lib', nixpkgsLib!, '--argstr', 'module', module, '--argstr', 'config', JSON.stringify(config), '--arg', 'viaFlake', String(viaFlake)],
    { timeoutMs: 60_000 },
  );
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Evaluated;
}

/** A serviceConfig value as the unit file lines NixOS writes for it. */
function unitLines(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(unitLines);
  if (typeof value === 'boolean') return [value ? 'true' : 'false'];
  if (value !== null && typeof value === 'object' && 'path' in value) return [String((value as { path: unknown }).path)];
  return [String(value)];
}

/** The contrib unit says what the module's unit says, apart from paths and secrets' locations. */
function expectUnitMatches(contrib: Unit, service: Service, differ: readonly string[]) {
  const moduleKeys = Object.keys(service.serviceConfig);
  for (const key of moduleKeys) {
    if (differ.includes(key)) {
      expect(values(contrib, 'Service', key).length, `${key} in the contrib unit`).toBeGreaterThan(0);
      continue;
    }
    expect(values(contrib, 'Service', key), key).toEqual(unitLines(service.serviceConfig[key]));
  }
  // Besides, the contrib unit only has its settings and the optional secrets file.
  const contribOnly = new Set((contrib.Service ?? []).map(([key]) => key).filter((key) => !moduleKeys.includes(key)));
  expect(contribOnly.has('Environment')).toBe(true);
  expect([...contribOnly].filter((key) => key !== 'Environment' && key !== 'EnvironmentFile')).toEqual([]);
  // The module's settings are the contrib unit's Environment= lines (the values may be examples).
  const contribEnv = Object.fromEntries(values(contrib, 'Service', 'Environment').map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]));
  for (const name of Object.keys(contribEnv).filter((name) => name !== 'PATH')) expect(Object.keys(service.environment)).toContain(name);
  expect(values(contrib, 'Install', 'WantedBy')).toEqual(service.wantedBy);
  expect(values(contrib, 'Unit', 'After')).toEqual(service.after);
}

describe(`the NixOS module of the server${skipBecause(NO_LIB)}`, { skip: !!NO_LIB }, () => {
  it('generates the hardened unit of contrib/systemd/nixfleet-sync.service', async () => {
    const result = await evalModule('nixos-sync', { services: { 'nixfleet-sync': { enable: true } } });
    expect(result.failedAssertions).toEqual([]);
    const service = result.services!['nixfleet-sync']!;
    expect(service.environment).toEqual({ NIXFLEET_LISTEN: '127.0.0.1:8000', NIXFLEET_DATA_DIR: '/var/lib/nixfleet-sync' });
    const config = service.serviceConfig;
    expect(config).toMatchObject({
      DynamicUser: true,
      StateDirectory: 'nixfleet-sync',
      ProtectSystem: 'strict',
      ProtectHome: true,
      PrivateTmp: true,
      NoNewPrivileges: true,
      SystemCallFilter: ['@system-service', '~@privileged'],
      CapabilityBoundingSet: '',
      // Node's JIT needs W^X off.
      MemoryDenyWriteExecute: false,
    });
    expect(config.RestrictAddressFamilies).toEqual(expect.arrayContaining(['AF_INET', 'AF_INET6', 'AF_UNIX']));
    expect(String(config.ExecStart)).toMatch(/\/bin\/nixfleet-sync$/);
    expect(config).not.toHaveProperty('EnvironmentFile');
    expectUnitMatches(unitFile('nixfleet-sync.service'), service, ['ExecStart', 'EnvironmentFile']);
  });

  it('takes listen, dataDir, environmentFile, databaseUrl, settings and openFirewall', async () => {
    const result = await evalModule('nixos-sync', {
      services: {
        'nixfleet-sync': {
          enable: true,
          listen: '0.0.0.0:443',
          dataDir: '/var/lib/fleet',
          environmentFile: '/run/secrets/nixfleet.env',
          databaseUrl: 'postgres:///nixfleet?host=/run/postgresql',
          settings: { NIXFLEET_LOG_LEVEL: 'debug', NIXFLEET_SNAPSHOT_EVERY: 500 },
          openFirewall: true,
        },
      },
    });
    expect(result.failedAssertions).toEqual([]);
    const service = result.services!['nixfleet-sync']!;
    expect(service.environment).toEqual({
      NIXFLEET_LISTEN: '0.0.0.0:443',
      NIXFLEET_DATA_DIR: '/var/lib/fleet',
      NIXFLEET_DATABASE_URL: 'postgres:///nixfleet?host=/run/postgresql',
      NIXFLEET_LOG_LEVEL: 'debug',
      NIXFLEET_SNAPSHOT_EVERY: '500',
    });
    expect(service.serviceConfig).toMatchObject({
      StateDirectory: 'fleet',
      EnvironmentFile: '/run/secrets/nixfleet.env',
      // Port 443: that one capability, outside a user namespace.
      CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
      PrivateUsers: false,
    });
    expect(result.firewall).toEqual([443]);
  });

  it('refuses secrets and its own variables in settings, and foreign names', async () => {
    const secret = await evalModule('nixos-sync', { services: { 'nixfleet-sync': { enable: true, settings: { NIXFLEET_ADMIN_PASSWORD: 'x' } } } });
    expect(secret.failedAssertions.join('\n')).toMatch(/environmentFile/);
    const own = await evalModule('nixos-sync', { services: { 'nixfleet-sync': { enable: true, settings: { NIXFLEET_LISTEN: ':8000' } } } });
    expect(own.failedAssertions.join('\n')).toMatch(/listen, dataDir and databaseUrl/);
    const foreign = await evalModule('nixos-sync', { services: { 'nixfleet-sync': { enable: true, settings: { LOG_LEVEL: 'debug' } } } });
    expect(foreign.failedAssertions.join('\n')).toMatch(/LOG_LEVEL/);
  });

  it("defaults to the flake's package when imported from the flake", async () => {
    const result = await evalModule('nixos-sync', { services: { 'nixfleet-sync': { enable: true } } }, true);
    expect(String(result.services!['nixfleet-sync']!.serviceConfig.ExecStart)).toMatch(/-flake-package\/bin\/nixfleet-sync$/);
  });
});

describe(`the NixOS module of the agent${skipBecause(NO_LIB)}`, { skip: !!NO_LIB }, () => {
  const base = { enable: true, url: 'wss://fleet.example.org/ws', tokenFile: '/run/secrets/nixfleet-agent-token' };

  it('generates the unit of contrib/systemd/nixfleet-agent.service, a user and its sudo rule', async () => {
    const result = await evalModule('nixos-agent', { services: { 'nixfleet-agent': base } });
    expect(result.failedAssertions).toEqual([]);
    expect(result.warnings).toEqual([]);
    const service = result.services!['nixfleet-agent']!;
    expect(service.serviceConfig).toMatchObject({
      User: 'nixfleet-agent',
      Restart: 'always',
      RestartForceExitStatus: '101',
      KillMode: 'control-group',
      LoadCredential: 'token:/run/secrets/nixfleet-agent-token',
    });
    // A switch must not restart the agent under its own nixos-rebuild.
    expect(service.restartIfChanged).toBe(false);
    expect(service.environment).toEqual({
      NIXFLEET_URL: 'wss://fleet.example.org/ws',
      NIXFLEET_INTERVAL: '5',
      NIXFLEET_HOSTNAME: 'stub-host',
      NIXFLEET_REPO_DIR: '/var/lib/nixfleet-agent/repo',
      NIXFLEET_BRANCH: 'main',
    });
    expect(service.environment).not.toHaveProperty('NIXFLEET_TOKEN');
    expect(service.path).toContain('/run/wrappers');
    expect(result.users!['nixfleet-agent']).toMatchObject({ isSystemUser: true, group: 'nixfleet-agent' });
    // NOPASSWD for the nixos-rebuild and `systemctl reboot` paths only.
    expect(result.sudoRules).toHaveLength(1);
    const rule = result.sudoRules![0]!;
    expect(rule.users).toEqual(['nixfleet-agent']);
    expect(rule.runAs).toBe('root');
    for (const command of rule.commands) {
      expect(command.options).toEqual(['NOPASSWD']);
      expect(command.command).toMatch(/^\/\S+\/bin\/(nixos-rebuild|systemctl reboot)$/);
    }
    expect(rule.commands.map((c) => c.command)).toContain('/run/current-system/sw/bin/nixos-rebuild');
    expectUnitMatches(unitFile('nixfleet-agent.service'), service, ['ExecStart', 'LoadCredential']);
  });

  it('writes the ops file and takes every option', async () => {
    const ops = { switch: ['sudo', '-n', 'nixos-rebuild', 'switch', '--flake', '{repo_dir}#{hostname}'], test: 'echo ok', update: null };
    const result = await evalModule('nixos-agent', {
      services: { 'nixfleet-agent': { ...base, interval: 0.5, hostname: 'web-1', repoUrl: 'https://git.example.org/fleet.git', repoDir: '/srv/fleet', branch: 'prod', ops, extraEnvironment: { NIXFLEET_LOCATION: 'rack 3' } } },
    });
    expect(result.failedAssertions).toEqual([]);
    const environment = result.services!['nixfleet-agent']!.environment;
    expect(environment).toMatchObject({ NIXFLEET_HOSTNAME: 'web-1', NIXFLEET_REPO_URL: 'https://git.example.org/fleet.git', NIXFLEET_REPO_DIR: '/srv/fleet', NIXFLEET_BRANCH: 'prod', NIXFLEET_LOCATION: 'rack 3' });
    expect(Number(environment.NIXFLEET_INTERVAL)).toBe(0.5);
    expect(environment.NIXFLEET_OPS_FILE).toMatch(/^\/nix\/store\/.*-nixfleet-agent-ops\.json$/);
    expect(JSON.parse(result.opsJson!)).toEqual({ ops });

    // The real agent accepts that file (an invalid one stops it before it connects).
    const opsFile = join(work, 'ops.json');
    writeFileSync(opsFile, result.opsJson!);
    const check = await run(process.execPath, [bundle, '--check'], { env: { PATH: process.env.PATH, HOME: work, NIXFLEET_URL: `ws://127.0.0.1:${await closedPort()}/ws`, NIXFLEET_TOKEN: 'x', NIXFLEET_OPS_FILE: opsFile } });
    expect(check.status).toBe(1);
    expect(check.stderr).toMatch(/^FAILED: cannot connect/m);
    expect(check.stderr).not.toMatch(/invalid configuration/);
  });

  it('refuses the token in extraEnvironment', async () => {
    const result = await evalModule('nixos-agent', { services: { 'nixfleet-agent': { ...base, extraEnvironment: { NIXFLEET_TOKEN: 'nft_x' } } } });
    expect(result.failedAssertions.join('\n')).toMatch(/tokenFile/);
  });

  it('starts the agent with the token of its credential: a real agent registers with a real server', async () => {
    const result = await evalModule('nixos-agent', { services: { 'nixfleet-agent': base } }, true);
    const start = result.services!['nixfleet-agent']!.serviceConfig.ExecStart as { path: string; text: string };
    // From the flake: the flake's agent package.
    const agentBin = /exec (\/nix\/store\/\S+-flake-agent\/bin\/nixfleet-agent) "\$@"/.exec(start.text)?.[1];
    expect(agentBin, start.text).toBeDefined();

    const { url, token } = await serverWithAgentToken();
    const credentials = join(work, 'credentials');
    mkdirSync(credentials, { recursive: true });
    writeFileSync(join(credentials, 'token'), `${token}\n`, { mode: 0o600 });
    const script = join(work, 'nixfleet-agent-start');
    writeFileSync(script, start.text.replace(agentBin!, `${process.execPath} ${bundle}`));
    const env = { ...result.services!['nixfleet-agent']!.environment, NIXFLEET_URL: url, NIXFLEET_HOSTNAME: 'web-1', PATH: process.env.PATH, HOME: work, CREDENTIALS_DIRECTORY: credentials };
    const check = await run('bash', [script, '--check'], { env });
    expect(check.stdout + check.stderr).toMatch(/^OK: registered as web-1/m);
    expect(check.status).toBe(0);
  });
});

describe(`the Home Manager module of the agent${skipBecause(NO_LIB)}`, { skip: !!NO_LIB }, () => {
  it('runs the agent as a launchd agent kept alive, with the same options', async () => {
    const result = await evalModule('home-manager-agent', { services: { 'nixfleet-agent': { enable: true, url: 'wss://fleet.example.org/ws', tokenFile: '/Users/stub/.config/nixfleet/token', ops: { reboot: null } } } }, true);
    expect(result.failedAssertions).toEqual([]);
    const agent = result.launchd!['nixfleet-agent']!;
    expect(agent.enable).toBe(true);
    // The agent exits 0 after a switch on macOS: KeepAlive must restart it on any exit.
    expect(agent.config).toMatchObject({ KeepAlive: true, RunAtLoad: true });
    expect(agent.config.ProgramArguments).toEqual([expect.stringMatching(/-nixfleet-agent-start$/)]);
    const environment = agent.config.EnvironmentVariables as Record<string, string>;
    expect(environment).toMatchObject({ NIXFLEET_URL: 'wss://fleet.example.org/ws', NIXFLEET_REPO_DIR: '/Users/stub/.local/share/nixfleet/repo' });
    expect(environment).not.toHaveProperty('NIXFLEET_TOKEN');
    expect(environment).not.toHaveProperty('NIXFLEET_HOSTNAME');
    expect(JSON.parse(result.opsJson!)).toEqual({ ops: { reboot: null } });

    const nixos = await evalModule('nixos-agent', { services: { 'nixfleet-agent': { enable: true, url: 'x', tokenFile: '/x' } } });
    expect(result.optionNames).toEqual(nixos.optionNames);
  });
});

interface PackageArgs {
  name: string;
  pname: string;
  version: string;
  nodejs: string;
  nativeBuildInputs: string[];
  npmDeps: string;
  npmDepsHash: string;
  npmPackFlags: string[];
  npmRebuildFlags: string[];
  npmBuildScript: string | null;
  postPatch: string;
  buildPhase: string | null;
  installPhase: string | null;
  postInstall: string;
  installCheckPhase: string;
  meta: { mainProgram: string; platforms: string[] };
}
interface Packages {
  systems: string[];
  default: string;
  lockfile: string;
  'nixfleet-sync': PackageArgs;
  'nixfleet-agent': PackageArgs;
  'darwin-sync': PackageArgs;
  node22: { sync: PackageArgs; agent: PackageArgs };
}

describe(`the flake's packages${skipBecause(NO_LIB)}`, { skip: !!NO_LIB }, () => {
  let packages: Packages;
  beforeAll(async () => {
    if (NO_LIB) return;
    const result = await run(nixInstantiate!, ['--readonly-mode', '--eval', '--strict', '--json', 'nix/tests/eval-packages.nix', '--arg', 'lib', nixpkgsLib!], { timeoutMs: 60_000 });
    if (result.status !== 0) throw new Error(result.stderr);
    packages = JSON.parse(result.stdout) as Packages;
  });

  it('build the server with buildNpmPackage on Node 20, the native module and the backfilled lock', () => {
    expect(packages.systems.sort()).toEqual(['aarch64-darwin', 'aarch64-linux', 'x86_64-darwin', 'x86_64-linux']);
    expect(packages.default).toBe(packages['nixfleet-sync'].name);
    const sync = packages['nixfleet-sync'];
    expect(sync).toMatchObject({ pname: 'nixfleet-sync', nodejs: 'nodejs-20', npmBuildScript: 'build', npmPackFlags: ['--ignore-scripts'], npmRebuildFlags: [] });
    expect(sync.nativeBuildInputs).toEqual(expect.arrayContaining(['python3', 'make-wrapper']));
    expect(packages['darwin-sync'].nativeBuildInputs).toContain('cctools');
    expect(sync.postPatch.trim()).toBe(`install -m 644 ${packages.lockfile} package-lock.json`);
    expect(packages.lockfile).toMatch(/^\/nix\/store\/[a-z0-9]{32}-package-lock\.json$/);
    expect(sync.postInstall).toContain('rm -f "$out/bin/nixfleet-agent"');
    expect(sync.postInstall).toMatch(/makeWrapper \S+-nodejs-20\/bin\/node "\$out\/bin\/nixfleet-sync" \\\n\s+--add-flags "\$out\/lib\/node_modules\/nixfleet-sync\/dist\/server\/main\.js"/);
    expect(sync.postInstall).toMatch(/"\$out\/bin\/nixfleet-sync-admin" \\\n\s+--add-flags "\$out\/lib\/node_modules\/nixfleet-sync\/dist\/server\/admin-cli\.js"/);
    expect(sync.installCheckPhase).toContain('better-sqlite3');
    expect(sync.meta.mainProgram).toBe('nixfleet-sync');
  });

  it('build the agent from the same dependencies, without install scripts, and follow a Node override', () => {
    const agent = packages['nixfleet-agent'];
    const sync = packages['nixfleet-sync'];
    expect(agent).toMatchObject({ pname: 'nixfleet-agent', nodejs: 'nodejs-20', npmRebuildFlags: ['--ignore-scripts'], npmDeps: sync.npmDeps, npmDepsHash: sync.npmDepsHash, postPatch: sync.postPatch });
    expect(agent.meta.mainProgram).toBe('nixfleet-agent');
    expect(packages.node22.sync.nodejs).toBe('nodejs-22');
    expect(packages.node22.agent.nodejs).toBe('nodejs-22');
    expect(packages.node22.agent.installPhase).toContain('-nodejs-22/bin/node');
  });

  it("the agent's build, install and install-check phases run: nixfleet-agent --help works", async () => {
    const agent = packages['nixfleet-agent'];
    // A build directory like the sandbox's: the source (linked) and its node_modules.
    const build = join(work, 'agent-build');
    mkdirSync(build, { recursive: true });
    for (const entry of ['package.json', 'scripts', 'src', 'node_modules']) symlinkSync(join(ROOT, entry), join(build, entry));
    const out = join(work, 'agent-out');
    const node = process.execPath;
    const script = [
      'set -euo pipefail',
      'runHook() { :; }',
      // nixpkgs' makeWrapper, as far as these phases use it.
      'makeWrapper() { local exe=$1 wrapper=$2; shift 2; local flags=""; while [ $# -gt 0 ]; do case $1 in --add-flags) flags="$flags $2"; shift 2;; *) echo "makeWrapper: $1?" >&2; return 1;; esac; done; mkdir -p "$(dirname "$wrapper")"; printf \'#!/bin/sh\\nexec %s %s "$@"\\n\' "$exe" "$flags" > "$wrapper"; chmod +x "$wrapper"; }',
      `export out=${JSON.stringify(out)}`,
      agent.buildPhase!,
      agent.installPhase!,
      agent.installCheckPhase,
    ]
      .join('\n')
      .replace(/\/nix\/store\/[a-z0-9]{32}-nodejs-20\/bin\/node/g, node);
    const result = await run('bash', ['-c', script], { cwd: build, env: { PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`, HOME: work }, timeoutMs: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(existsSync(join(out, 'share/nixfleet-agent/nixfleet-agent.mjs'))).toBe(true);
    const help = await run(join(out, 'bin/nixfleet-agent'), ['--help'], { env: { PATH: process.env.PATH, HOME: work } });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('NIXFLEET_TOKEN');
  });
});

// --- (b) the bundle the packages wrap -------------------------------------------------------

describe('the agent bundle', () => {
  it('--help exits 0 and --version prints the version', async () => {
    const help = await run(process.execPath, [bundle, '--help'], { env: { PATH: process.env.PATH, HOME: work } });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('NIXFLEET_URL');
    const version = await run(process.execPath, [bundle, '--version'], { env: { PATH: process.env.PATH, HOME: work } });
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('--check against a closed port exits 1 with one clear line', async () => {
    const port = await closedPort();
    const check = await run(process.execPath, [bundle, '--check'], { env: { PATH: process.env.PATH, HOME: work, NIXFLEET_URL: `ws://127.0.0.1:${port}/ws`, NIXFLEET_TOKEN: 'nft_nothing' } });
    expect(check.status).toBe(1);
    expect(check.stderr.trim().split('\n')).toHaveLength(1);
    expect(check.stderr).toMatch(new RegExp(`^FAILED: cannot connect to ws://127\\.0\\.0\\.1:${port}/ws: .*ECONNREFUSED`));
  });

  it('--check against a real server that refuses the token exits 1 and says so', async () => {
    const { url } = await serverWithAgentToken();
    const check = await run(process.execPath, [bundle, '--check'], { env: { PATH: process.env.PATH, HOME: work, NIXFLEET_URL: url, NIXFLEET_TOKEN: 'nft_not_a_token', NIXFLEET_HOSTNAME: 'web-1' } });
    expect(check.status).toBe(1);
    expect(check.stderr).toMatch(/^FAILED: .*(401|token)/im);
  });
});

// --- (c) the plain systemd units -------------------------------------------------------------

describe('contrib/systemd', () => {
  it('has the hardening and restart settings of the modules', () => {
    const sync = unitFile('nixfleet-sync.service');
    for (const [key, expected] of [
      ['DynamicUser', 'true'],
      ['StateDirectory', 'nixfleet-sync'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'true'],
      ['PrivateTmp', 'true'],
      ['NoNewPrivileges', 'true'],
      ['CapabilityBoundingSet', ''],
      ['MemoryDenyWriteExecute', 'false'],
    ] as const) {
      expect(value(sync, 'Service', key), key).toBe(expected);
    }
    expect(values(sync, 'Service', 'SystemCallFilter')).toEqual(['@system-service', '~@privileged']);
    expect(values(sync, 'Service', 'RestrictAddressFamilies')).toEqual(expect.arrayContaining(['AF_INET', 'AF_INET6', 'AF_UNIX']));

    const agent = unitFile('nixfleet-agent.service');
    expect(value(agent, 'Service', 'Restart')).toBe('always');
    expect(value(agent, 'Service', 'RestartForceExitStatus')).toBe('101');
    expect(value(agent, 'Service', 'KillMode')).toBe('control-group');
    expect(value(agent, 'Service', 'LoadCredential')).toMatch(/^token:\//);
    expect(value(agent, 'Service', 'User')).toBe('nixfleet-agent');
  });

  it(`pass systemd-analyze verify${skipBecause(NO_SYSTEMD)}`, { skip: !!NO_SYSTEMD }, async () => {
    // verify needs each ExecStart's program to exist: this Node instead of /usr/bin/node.
    const dir = join(work, 'units');
    mkdirSync(dir, { recursive: true });
    const units = ['nixfleet-sync.service', 'nixfleet-agent.service'].map((name) => {
      const path = join(dir, name);
      writeFileSync(path, read(`contrib/systemd/${name}`).replaceAll('/usr/bin/node', process.execPath));
      return path;
    });
    const result = await run(systemdAnalyze!, ['verify', ...units], { timeoutMs: 60_000 });
    // verify exits 0 on unknown keys and unparsable values, with a warning: none may name our units.
    const ours = result.stderr.split('\n').filter((line) => line.includes('nixfleet'));
    expect(ours).toEqual([]);
    expect(result.status, result.stderr).toBe(0);
  });

  it("the agent unit's start command passes the credential's token: a real agent registers", async () => {
    const unit = unitFile('nixfleet-agent.service');
    const execStart = value(unit, 'Service', 'ExecStart') ?? '';
    const shell = /^\/bin\/sh -c '(.*)'$/.exec(execStart)?.[1];
    expect(shell, execStart).toBeDefined();
    // systemd turns "$$" into "$" before the shell sees it.
    const script = shell!.replaceAll('$$', '$');
    expect(script).toContain('/usr/bin/node /opt/nixfleet-agent/nixfleet-agent.mjs');
    const { url, token } = await serverWithAgentToken();
    const credentials = join(work, 'unit-credentials');
    mkdirSync(credentials, { recursive: true });
    writeFileSync(join(credentials, 'token'), `${token}\n`, { mode: 0o600 });
    const environment = Object.fromEntries(values(unit, 'Service', 'Environment').map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]));
    const check = await run('/bin/sh', ['-c', script.replace('/usr/bin/node /opt/nixfleet-agent/nixfleet-agent.mjs', `${process.execPath} ${bundle} --check`)], {
      env: { ...environment, NIXFLEET_URL: url, NIXFLEET_HOSTNAME: 'web-1', PATH: process.env.PATH, HOME: work, CREDENTIALS_DIRECTORY: credentials },
    });
    expect(check.stdout + check.stderr).toMatch(/^OK: registered as web-1/m);
    expect(check.status).toBe(0);
  });
});

// --- (d) docs/INSTALL.md and the modules ---------------------------------------------------

/** Options declared in a module file: `name = mkOption {` / `name = lib.mkEnableOption`. */
function declaredOptions(path: string): string[] {
  return [...read(path).matchAll(/^\s+([A-Za-z][A-Za-z0-9]*) = (?:lib\.)?mk(?:Enable)?Option\b/gm)].map((m) => m[1]!).sort();
}

describe('docs/INSTALL.md', () => {
  const doc = () => read('docs/INSTALL.md');
  const documented = (service: string) => [...new Set([...doc().matchAll(new RegExp(`services\\.${service}\\.([A-Za-z][A-Za-z0-9]*)`, 'g'))].map((m) => m[1]!))].sort();

  it('names exactly the options of the server module', () => {
    const declared = declaredOptions('nix/modules/nixfleet-sync.nix');
    expect(declared).toEqual(expect.arrayContaining(['enable', 'listen', 'dataDir', 'environmentFile', 'databaseUrl', 'settings', 'openFirewall']));
    expect(documented('nixfleet-sync')).toEqual(declared);
  });

  it('names exactly the options of the agent modules (NixOS and Home Manager share them)', () => {
    const declared = declaredOptions('nix/modules/agent-common.nix');
    expect(declared).toEqual(expect.arrayContaining(['enable', 'url', 'tokenFile', 'interval', 'hostname', 'repoUrl', 'repoDir', 'branch', 'ops', 'extraEnvironment']));
    expect(documented('nixfleet-agent')).toEqual(declared);
    for (const module of ['nix/modules/nixfleet-agent.nix', 'nix/modules/home-manager-agent.nix']) {
      expect(read(module), module).toMatch(/options\.services\.nixfleet-agent = common\.options/);
      expect(declaredOptions(module), module).toEqual([]);
    }
  });

  it('names files that exist and the flake outputs there are', () => {
    for (const path of ['contrib/systemd/nixfleet-sync.service', 'contrib/systemd/nixfleet-agent.service', 'contrib/compose.yml', 'contrib/docker/nginx.conf', 'nix/package.nix', 'nix/tests/nixos.nix', 'Dockerfile']) {
      expect(doc(), path).toContain(path);
      expect(existsSync(join(ROOT, path)), path).toBe(true);
    }
    const flake = read('flake.nix');
    for (const output of ['packages', 'nixosModules', 'homeManagerModules', 'overlays', 'checks']) expect(flake).toMatch(new RegExp(`\\b${output}(\\.default)? =`));
    expect(doc()).toMatch(/No Nix build was run/);
  });
});

// --- (e) the container ------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions with continuation lines joined, comments dropped. */
function dockerfile(): Instruction[] {
  const lines = read('Dockerfile').split('\n');
  const out: Instruction[] = [];
  let current = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw) && current === '') continue;
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') {
      const match = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(current.trim());
      if (!match) throw new Error(`cannot read Dockerfile line: ${current}`);
      out.push({ op: match[1]!.toUpperCase(), args: match[2]!.replace(/\s+/g, ' ').trim() });
    }
    current = '';
  }
  return out;
}

describe('the Dockerfile', () => {
  it('builds in one stage and runs a slim, non-root one with dist/ and production dependencies only', () => {
    const instructions = dockerfile();
    const stages: Instruction[][] = [];
    for (const instruction of instructions) {
      if (instruction.op === 'FROM') stages.push([]);
      stages.at(-1)?.push(instruction);
    }
    expect(stages.length).toBe(2);
    const [build, runtime] = stages as [Instruction[], Instruction[]];
    expect(build[0]!.args).toMatch(/^node:\$\{NODE_VERSION\}-\S+ AS build$/);
    const buildRuns = build.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(buildRuns).toMatch(/npm ci\b/);
    expect(buildRuns).toMatch(/npm run build\b/);
    expect(buildRuns).toMatch(/npm prune --omit=dev\b/);
    expect(buildRuns).toMatch(/npm rebuild better-sqlite3/);

    expect(runtime[0]!.args).toMatch(/^node:\$\{NODE_VERSION\}-\S*slim\b/);
    const runtimeOf = (op: string) => runtime.filter((i) => i.op === op).map((i) => i.args);
    expect(runtimeOf('RUN').join('\n')).not.toMatch(/npm (ci|install)/);
    const copies = runtimeOf('COPY');
    expect(copies.filter((c) => c.startsWith('--from=build')).map((c) => c.split(' ')[1])).toEqual(['/src/package.json', '/src/node_modules', '/src/dist']);
    const user = runtimeOf('USER').at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(runtimeOf('EXPOSE')).toEqual(['8000']);
    const env = runtimeOf('ENV').join(' ');
    expect(env).toContain('NIXFLEET_LISTEN=0.0.0.0:8000');
    expect(env).toContain('NIXFLEET_DATA_DIR=/data');
    expect(runtimeOf('VOLUME').join(' ')).toContain('/data');
    const healthcheck = runtimeOf('HEALTHCHECK').join(' ');
    expect(healthcheck).toMatch(/CMD \["node", "\/app\/healthcheck\.mjs"\]/);
    expect(healthcheck).not.toMatch(/curl|wget/);
    expect(runtimeOf('CMD')).toEqual(['["node", "dist/server/main.js"]']);
  });

  it('copies only files of the build context that .dockerignore keeps', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const sources = dockerfile()
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(' ').slice(0, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      const top = source.split('/')[0]!;
      expect(ignored, source).not.toContain(top);
      expect(ignored, source).not.toContain(source);
    }
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', './scripts', './src', 'contrib/docker/healthcheck.mjs']) {
      expect(sources.map((s) => s.replace(/^\.\//, '')), needed).toContain(needed.replace(/^\.\//, ''));
    }
  });

  it('has a health check that answers for a real server and fails clearly otherwise', async () => {
    const server = await startTestServer();
    defer(() => server.dispose());
    const port = new URL(server.url).port;
    const healthcheck = join(ROOT, 'contrib/docker/healthcheck.mjs');
    for (const listen of [`0.0.0.0:${port}`, `127.0.0.1:${port}`]) {
      const ok = await run(process.execPath, [healthcheck], { env: { PATH: process.env.PATH, NIXFLEET_LISTEN: listen } });
      expect(ok.status, `${listen}: ${ok.stderr}`).toBe(0);
    }
    const closed = await closedPort();
    const down = await run(process.execPath, [healthcheck], { env: { PATH: process.env.PATH, NIXFLEET_LISTEN: `0.0.0.0:${closed}` } });
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`^healthcheck: 127\\.0\\.0\\.1:${closed}: .*ECONNREFUSED`));
  });

  it(`compose file passes \`compose config\`${skipBecause(NO_COMPOSE)}`, { skip: !!NO_COMPOSE }, async () => {
    const [command, ...args] = compose!;
    const env = { PATH: process.env.PATH, HOME: work, POSTGRES_PASSWORD: 'pg-secret', NIXFLEET_ADMIN_PASSWORD: 'admin-secret' };
    const result = await run(command!, [...args, '-f', 'contrib/compose.yml', 'config'], { env, timeoutMs: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    for (const service of ['postgres:', 'sync-1:', 'sync-2:', 'lb:']) expect(result.stdout).toContain(service);
    expect(result.stdout.match(/NIXFLEET_DATABASE_URL: postgres:\/\/nixfleet:pg-secret@postgres:5432\/nixfleet/g)).toHaveLength(2);
    // Without the secrets it refuses to start rather than run with empty passwords.
    const missing = await run(command!, [...args, '-f', 'contrib/compose.yml', 'config'], { env: { PATH: process.env.PATH, HOME: work }, timeoutMs: 60_000 });
    expect(missing.status).not.toBe(0);
    expect(missing.stdout + missing.stderr).toMatch(/set (POSTGRES_PASSWORD|NIXFLEET_ADMIN_PASSWORD)/);
  });

  it(`nginx accepts the load balancer's configuration${skipBecause(NO_NGINX)}`, { skip: !!NO_NGINX }, async () => {
    // The upstreams' names exist only in the compose network: loopback stands in for them.
    const conf = join(work, 'nginx.conf');
    writeFileSync(conf, read('contrib/docker/nginx.conf').replace(/server sync-\d:8000;/g, 'server 127.0.0.1:8000;'));
    const result = await run(nginx!, ['-t', '-c', conf, '-g', `pid ${join(work, 'nginx.pid')}; error_log stderr;`]);
    expect(result.stderr).toMatch(/test is successful/);
    expect(result.status).toBe(0);
  });
});
