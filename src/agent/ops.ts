// What each op runs: configuration, not code. Built-in defaults for NixOS and macOS, an ops file
// (NIXFLEET_OPS_FILE) that overrides them per op, and the placeholder substitution that turns an
// entry into an argv. `stop` and `restart` are not commands: the agent itself carries them out.
import { readFileSync } from 'node:fs';
import { AGENT_OPS } from '../protocol/agent-wire.js';
import { AgentConfigError, type AgentConfig, type AgentHostType } from './config.js';

/** An argv (no shell), a shell string (run by /bin/sh -c), or null: the op is disabled. */
export type OpCommandSpec = readonly string[] | string | null;
export type OpTable = Readonly<Record<string, OpCommandSpec>>;

/** Values of the placeholders `{repo_dir}`, `{repo_url}`, `{hostname}`, `{branch}`, `{op}`. */
export interface OpVariables {
  repo_dir: string;
  repo_url: string;
  hostname: string;
  branch: string;
}

/** Ops the agent carries out itself; an ops file cannot redefine them. */
export const BUILT_IN_OPS: readonly string[] = ['stop', 'restart'];

/**
 * Exit code by which a `refresh-*` op says "works, but outdated" (the update status shows
 * `outdated`); 0 is `ok`, anything else `error`. Our convention, used by the defaults below.
 */
export const OUTDATED_EXIT_CODE = 10;

/** An op this host cannot run: unknown, disabled, or missing a setting its command needs. */
export class OpUnavailableError extends Error {
  readonly code = 'OP_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'OpUnavailableError';
  }
}

// Shell snippets shared by several defaults. Placeholders are replaced by single-quoted values.
const PULL = [
  'set -e',
  'if [ ! -d {repo_dir}/.git ]; then',
  '  [ -n {repo_url} ] || { echo "no git clone in "{repo_dir}" and NIXFLEET_REPO_URL is not set" >&2; exit 1; }',
  '  git clone --branch {branch} {repo_url} {repo_dir}',
  'fi',
  'git -C {repo_dir} fetch origin {branch}',
  'git -C {repo_dir} reset --hard origin/{branch}',
].join('\n');

/** Runs hosts/<hostname>/tests/*.sh in the fleet repo; fails if any fails. */
const TESTS = [
  'dir={repo_dir}/hosts/{hostname}/tests',
  'if [ ! -d "$dir" ]; then echo "no tests for this host ($dir does not exist)"; exit 0; fi',
  'total=0; failed=0',
  'for t in "$dir"/*.sh; do',
  '  [ -e "$t" ] || continue',
  '  total=$((total + 1))',
  '  echo "test: $(basename "$t")"',
  '  if [ -x "$t" ]; then "$t"; else sh "$t"; fi',
  '  code=$?',
  '  if [ "$code" -eq 0 ]; then echo "  ok"; else echo "  FAILED (exit $code)" >&2; failed=$((failed + 1)); fi',
  'done',
  'echo "$((total - failed)) of $total tests passed"',
  '[ "$failed" -eq 0 ]',
].join('\n');

const REFRESH_GIT = [
  'set -e',
  'git -C {repo_dir} fetch origin {branch}',
  'behind=$(git -C {repo_dir} rev-list --count HEAD..origin/{branch})',
  'echo "$behind commit(s) behind origin/"{branch}',
].join('\n');

const REFRESH_LOCK = 'nix flake metadata {repo_dir}';

/** Compares the running system with what the flake builds for this host (exit 10: outdated). */
function refreshSystem(configured: string, running: string): string {
  return [
    'set -e',
    `configured=$(nix eval --raw ${configured})`,
    `running=$(readlink -f ${running})`,
    'echo "running:    $running"',
    'echo "configured: $configured"',
    `[ "$running" = "$configured" ] || { echo "the running system is not the configured one: switch to apply it"; exit ${OUTDATED_EXIT_CODE}; }`,
    'echo "the running system is the configured one"',
  ].join('\n');
}

function both(first: string, second: string): string {
  return `(\n${first}\n) || exit $?\n${second}`;
}

const NIXOS_SWITCH = 'sudo -n nixos-rebuild switch --flake {repo_dir}#{hostname}';
const NIXOS_SYSTEM = refreshSystem('{repo_dir}#nixosConfigurations.{hostname}.config.system.build.toplevel.outPath', '/run/current-system');

const NIXOS_OPS: OpTable = {
  pull: PULL,
  switch: ['sudo', '-n', 'nixos-rebuild', 'switch', '--flake', '{repo_dir}#{hostname}'],
  'pull-switch': both(PULL, NIXOS_SWITCH),
  test: TESTS,
  rollback: ['sudo', '-n', 'nixos-rebuild', 'switch', '--rollback'],
  reboot: ['sudo', '-n', 'systemctl', 'reboot'],
  // Our reading of the original's ops: `update` moves the clone's flake inputs forward,
  // `force-update` does so bypassing Nix's caches; neither activates anything.
  update: ['nix', 'flake', 'update', '--flake', '{repo_dir}'],
  'force-update': ['nix', 'flake', 'update', '--refresh', '--flake', '{repo_dir}'],
  'refresh-git': REFRESH_GIT,
  'refresh-lock': REFRESH_LOCK,
  'refresh-system': NIXOS_SYSTEM,
  'refresh-all': `${REFRESH_GIT}\n${REFRESH_LOCK}\n${NIXOS_SYSTEM}`,
  'check-version': 'nixos-version; nix --version',
};

// Home Manager on macOS, as the original. Hosts managed by nix-darwin set, in the ops file,
// "switch": ["darwin-rebuild", "switch", "--flake", "{repo_dir}#{hostname}"] and
// "rollback": ["darwin-rebuild", "--rollback"].
const HM_SWITCH = 'home-manager switch --flake {repo_dir}#{hostname}';
const HM_SYSTEM = refreshSystem('{repo_dir}#homeConfigurations.{hostname}.activationPackage.outPath', '"$HOME/.local/state/home-manager/gcroots/current-home"');

const MACOS_OPS: OpTable = {
  ...NIXOS_OPS,
  switch: ['home-manager', 'switch', '--flake', '{repo_dir}#{hostname}'],
  'pull-switch': both(PULL, HM_SWITCH),
  rollback: [
    'prev=$(home-manager generations | sed -n 2p | awk \'{print $NF}\')',
    '[ -n "$prev" ] || { echo "no previous home-manager generation" >&2; exit 1; }',
    '"$prev/activate"',
  ].join('\n'),
  reboot: ['sudo', '-n', 'shutdown', '-r', 'now'],
  'refresh-system': HM_SYSTEM,
  'refresh-all': `${REFRESH_GIT}\n${REFRESH_LOCK}\n${HM_SYSTEM}`,
  'check-version': 'sw_vers; home-manager --version; nix --version',
};

export function defaultOps(hostType: AgentHostType): OpTable {
  return hostType === 'macos' ? MACOS_OPS : NIXOS_OPS;
}

/** The defaults for the host, overridden by NIXFLEET_OPS_FILE when set. */
export function opTableFor(config: Pick<AgentConfig, 'hostType' | 'opsFile'>): OpTable {
  const defaults = defaultOps(config.hostType);
  return config.opsFile === null ? defaults : { ...defaults, ...loadOpsFile(config.opsFile) };
}

export function loadOpsFile(path: string): OpTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AgentConfigError('NIXFLEET_OPS_FILE', `cannot read ${path}: ${(error as Error).message}`);
  }
  return parseOpsFile(text, path);
}

/** `{"ops": {"<op>": ["argv0", ...] | "shell string" | null}}`; throws naming what is wrong. */
export function parseOpsFile(text: string, source: string): OpTable {
  const fail = (message: string): never => {
    throw new AgentConfigError('NIXFLEET_OPS_FILE', `${source}: ${message}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`not JSON (${(error as Error).message})`);
  }
  const ops = isRecord(parsed) ? parsed.ops : undefined;
  if (!isRecord(ops)) return fail('expected {"ops": {"<op>": ["argv0", "arg", …] | "shell string" | null}}');
  const table: Record<string, OpCommandSpec> = {};
  for (const [op, spec] of Object.entries(ops)) {
    if (BUILT_IN_OPS.includes(op)) fail(`"${op}" is carried out by the agent itself and cannot be configured`);
    if (!(AGENT_OPS as readonly string[]).includes(op)) fail(`unknown op "${op}" (known: ${AGENT_OPS.filter((name) => !BUILT_IN_OPS.includes(name)).join(', ')})`);
    if (spec === null || (typeof spec === 'string' && spec.trim() !== '')) table[op] = spec;
    else if (Array.isArray(spec) && spec.length > 0 && spec.every((arg) => typeof arg === 'string') && spec[0] !== '') table[op] = spec as string[];
    else fail(`op "${op}" must be a non-empty argv array of strings, a shell string, or null (disabled)`);
  }
  return table;
}

/**
 * The argv that runs `op`: an argv entry with its placeholders replaced, or a shell string run
 * by `/bin/sh -c` with each placeholder replaced by its single-quoted value (so a value never
 * becomes shell syntax). Throws OpUnavailableError with a message fit for a `status error`.
 */
export function resolveOpCommand(table: OpTable, op: string, vars: OpVariables): string[] {
  if (!Object.hasOwn(table, op)) throw new OpUnavailableError(`no command is configured for op "${op}" on this host`);
  const spec = table[op];
  if (spec === null || spec === undefined) throw new OpUnavailableError(`op "${op}" is disabled on this host (null in NIXFLEET_OPS_FILE)`);
  const values: Record<string, string> = { ...vars, op };
  const substitute = (text: string, quote: (value: string) => string) =>
    text.replace(PLACEHOLDER, (_match, name: string) => {
      const value = values[name] ?? '';
      if (name === 'repo_dir' && value === '') throw new OpUnavailableError(`op "${op}" needs the fleet repo: set NIXFLEET_REPO_DIR or NIXFLEET_REPO_URL`);
      return quote(value);
    });
  if (typeof spec === 'string') return ['/bin/sh', '-c', substitute(spec, shellQuote)];
  return spec.map((arg) => substitute(arg, (value) => value));
}

/** `{name}` for the known names only, and not `${name}` (shell syntax in a shell string). */
const PLACEHOLDER = /(?<!\$)\{(repo_dir|repo_url|hostname|branch|op)\}/g;

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
