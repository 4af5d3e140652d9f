// The demo fleet's host profiles: names, platforms and hardware, derived from the host's index
// alone so a second run on the same store yields the same hosts (and reuses them).

import type { HOST_TYPES } from '../protocol/constants.js';

/** The platforms the demo simulates, of the protocol's host types. */
export type HostType = Extract<(typeof HOST_TYPES)[number], 'nixos' | 'macos'>;

export interface HostProfile {
  /** Host id and hostname, e.g. `web-01`. */
  name: string;
  role: string;
  host_type: HostType;
  cores: number;
  /** Where the host's CPU and RAM usage hover when it is idle (percent). */
  baseCpu: number;
  baseRam: number;
}

interface Role {
  role: string;
  host_type: HostType;
  cores: number;
  baseCpu: number;
  baseRam: number;
}

const ROLES: Record<string, Role> = {
  web: { role: 'web', host_type: 'nixos', cores: 4, baseCpu: 18, baseRam: 42 },
  db: { role: 'db', host_type: 'nixos', cores: 8, baseCpu: 25, baseRam: 71 },
  build: { role: 'build', host_type: 'nixos', cores: 32, baseCpu: 35, baseRam: 38 },
  'build-mac': { role: 'build-mac', host_type: 'macos', cores: 10, baseCpu: 22, baseRam: 55 },
  cache: { role: 'cache', host_type: 'nixos', cores: 4, baseCpu: 10, baseRam: 64 },
  worker: { role: 'worker', host_type: 'nixos', cores: 16, baseCpu: 45, baseRam: 50 },
  mon: { role: 'mon', host_type: 'nixos', cores: 2, baseCpu: 12, baseRam: 58 },
  'dev-mac': { role: 'dev-mac', host_type: 'macos', cores: 8, baseCpu: 15, baseRam: 62 },
  gw: { role: 'gw', host_type: 'nixos', cores: 2, baseCpu: 6, baseRam: 24 },
};

/** The order roles are handed out in; a fleet of 12 gets exactly this mix. */
const ROLE_CYCLE = ['web', 'web', 'db', 'build', 'build-mac', 'cache', 'worker', 'web', 'db', 'mon', 'dev-mac', 'gw'] as const;

export function hostProfiles(count: number): HostProfile[] {
  const seen = new Map<string, number>();
  const profiles: HostProfile[] = [];
  for (let i = 0; i < count; i++) {
    const role = ROLES[ROLE_CYCLE[i % ROLE_CYCLE.length]!]!;
    const n = (seen.get(role.role) ?? 0) + 1;
    seen.set(role.role, n);
    profiles.push({ ...role, name: `${role.role}-${String(n).padStart(2, '0')}` });
  }
  return profiles;
}

export const COMMIT_MESSAGES = [
  'nginx: raise worker_connections',
  'postgresql: bump to 16.4',
  'flake.lock: update nixpkgs',
  'users: add ssh key for ci',
  'monitoring: scrape node-exporter on workers',
  'darwin: enable touch id for sudo',
  'web: enable http3',
  'secrets: rotate deploy token',
  'build: allow 64 max-jobs on build hosts',
  'firewall: open 9100 on the monitoring network',
] as const;
