// What the agent reports about the host and itself besides its configuration: OS version,
// nixpkgs version, the fleet-config commit it runs (generation), and which build of the agent
// runs (store path, hash). Read at start and after every op; each fact is "" when unknown.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { release, type } from 'node:os';
import type { AgentConfig } from './config.js';

export interface HostFacts {
  os_version: string;
  nixpkgs_version: string;
  /** Git commit of the fleet config in the agent's clone. */
  generation: string;
  /** The agent's Nix store path, when it runs from the store (omitted otherwise). */
  store_path?: string;
  /** SHA-256 of the agent's script, so the server can tell an old build from a new one. */
  binary_hash?: string;
}

export type HostFactsSource = () => Promise<HostFacts> | HostFacts;

/** Facts read from this machine. */
export function systemHostFacts(config: Pick<AgentConfig, 'repoDir'>, platform: NodeJS.Platform = process.platform): HostFactsSource {
  const build = agentBuild(process.argv[1]);
  return async () => {
    const [osVersion, generation] = await Promise.all([osVersionOf(platform), config.repoDir ? run('git', ['-C', config.repoDir, 'rev-parse', 'HEAD']) : Promise.resolve('')]);
    return { os_version: osVersion, nixpkgs_version: nixpkgsVersion(config.repoDir), generation, ...build };
  };
}

async function osVersionOf(platform: NodeJS.Platform): Promise<string> {
  if (platform === 'darwin') {
    const version = await run('sw_vers', ['-productVersion']);
    return version ? `macOS ${version}` : `${type()} ${release()}`;
  }
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readOr('/etc/os-release'))?.[1];
  return pretty || `${type()} ${release()}`;
}

/** NixOS says it in /run/current-system; elsewhere the nixpkgs revision the clone's flake.lock pins. */
function nixpkgsVersion(repoDir: string): string {
  const nixos = readOr('/run/current-system/nixos-version').trim();
  if (nixos || !repoDir) return nixos;
  try {
    const lock = JSON.parse(readOr(`${repoDir}/flake.lock`)) as { nodes?: Record<string, { locked?: { rev?: string } }> };
    return lock.nodes?.nixpkgs?.locked?.rev?.slice(0, 7) ?? '';
  } catch {
    return '';
  }
}

function agentBuild(script: string | undefined): Pick<HostFacts, 'store_path' | 'binary_hash'> {
  if (!script) return {};
  try {
    const path = realpathSync(script);
    const storePath = /^\/nix\/store\/[^/]+/.exec(path)?.[0];
    const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
    return { binary_hash: hash, ...(storePath ? { store_path: storePath } : {}) };
  } catch {
    return {};
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A command's trimmed stdout, or "" when it fails or takes over 5 s. */
function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 5000 }, (error, stdout) => resolve(error ? '' : stdout.trim()));
  });
}
