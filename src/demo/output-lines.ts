// Plausible terminal output for each op (git pull, nix build, activation, tests), with the ANSI
// colours real tools print. Pure: the lines depend only on the inputs and the Rng. The demo's
// simulated-op.ts prints them; a command that hangs is the server's timeout to catch, not ours.
import type { Op } from '../protocol/schema.js';
import type { HostType } from './names.js';
import type { Rng } from './random.js';

export type Outcome = 'success' | 'error';
/** Every op of the protocol: the demo's operator starts some, and its agents run any. */
export type DemoOp = Op;

export interface OutputContext {
  hostname: string;
  hostType: HostType;
  /** Commit the host had before the op, and the one it moves to (pull) or activates (switch). */
  fromCommit: string;
  toCommit: string;
  outcome: Outcome;
}

const GREEN = '\u001b[32m';
const RED = '\u001b[31;1m';
const BOLD = '\u001b[1m';
const DIM = '\u001b[2m';
const RESET = '\u001b[0m';

const PACKAGES = [
  'openssl-3.0.14', 'nginx-1.26.1', 'postgresql-16.4', 'systemd-255.9', 'linux-6.6.44', 'glibc-2.39-52',
  'python3-3.12.4', 'nodejs-20.15.1', 'curl-8.8.0', 'git-2.45.2', 'prometheus-node-exporter-1.8.1',
  'openssh-9.8p1', 'bash-5.2p26', 'coreutils-9.5', 'zstd-1.5.6', 'sqlite-3.46.0', 'redis-7.2.5',
  'unit-nginx.service', 'etc-nixos', 'system-path', 'man-paths', 'firmware-linux-20240709',
];
const DARWIN_PACKAGES = ['darwin-system', 'darwin-version', 'launchd-agents', 'home-manager-generation', 'brew-bundle', 'nix-darwin-activate'];
const SERVICES = ['nginx.service', 'postgresql.service', 'prometheus-node-exporter.service', 'sshd.service', 'redis.service', 'nix-daemon.service'];
const CHECKS = ['ssh reachable', 'nix store verify', 'http responds 200', 'systemd has no failed units', 'disk usage below 85%', 'time is synchronised', 'backups ran in the last 24h'];
const CACHES = ['https://cache.nixos.org', 'https://nixfleet.cachix.org'];

/** The lines (each ending in \n) an op prints, ending the way `outcome` says. */
export function outputLines(op: DemoOp, ctx: OutputContext, rng: Rng): string[] {
  switch (op) {
    case 'pull':
      return pullLines(ctx, rng, true);
    case 'switch':
      return switchLines(ctx, rng, true);
    case 'pull-switch': {
      const pull = pullLines({ ...ctx, outcome: 'success' }, rng, false);
      return [...pull, ...switchLines(ctx, rng, true)];
    }
    case 'test':
      return testLines(ctx, rng);
    case 'rollback':
      return rollbackLines(ctx, rng);
    case 'restart':
      return restartLines(ctx, rng);
    case 'stop':
      return stopLines(ctx);
    case 'reboot':
      return rebootLines(ctx, rng);
  }
}

function pullLines(ctx: OutputContext, rng: Rng, last: boolean): string[] {
  const lines = [`${DIM}$ git -C /etc/nixfleet pull --ff-only${RESET}`, 'From github.com:acme/fleet-config'];
  if (ctx.outcome === 'error' && last) {
    lines.push(`${RED}fatal:${RESET} unable to access 'https://github.com/acme/fleet-config/': Could not resolve host: github.com`);
    return lines.map(nl);
  }
  if (ctx.fromCommit === ctx.toCommit) {
    lines.push('Already up to date.');
  } else {
    const files = rng.int(1, 4);
    lines.push(`   ${ctx.fromCommit}..${ctx.toCommit}  main       -> origin/main`, `Updating ${ctx.fromCommit}..${ctx.toCommit}`, 'Fast-forward');
    for (let i = 0; i < files; i++) {
      const file = rng.pick(['flake.lock', `hosts/${ctx.hostname}/default.nix`, 'modules/nginx.nix', 'modules/users.nix', 'modules/monitoring.nix']);
      const changes = rng.int(1, 24);
      lines.push(` ${file.padEnd(36)} | ${String(changes).padStart(2)} ${GREEN}${'+'.repeat(Math.min(changes, 8))}${RESET}${RED}${'-'.repeat(rng.int(0, 3))}${RESET}`);
    }
    lines.push(` ${files} file${files > 1 ? 's' : ''} changed, ${rng.int(1, 40)} insertions(+), ${rng.int(0, 12)} deletions(-)`);
  }
  if (last) lines.push(`${GREEN}pull complete:${RESET} now at ${ctx.toCommit}`);
  return lines.map(nl);
}

function switchLines(ctx: OutputContext, rng: Rng, last: boolean): string[] {
  const darwin = ctx.hostType === 'macos';
  const command = darwin ? 'darwin-rebuild switch --flake .#' : 'nixos-rebuild switch --flake .#';
  const lines = [`${DIM}$ ${command}${ctx.hostname}${RESET}`, 'building the system configuration...'];
  const packages = darwin ? [...DARWIN_PACKAGES, ...rng.sample(PACKAGES, 4)] : PACKAGES;
  const builds = rng.sample(packages, rng.int(3, 9));
  const fetches = rng.sample(PACKAGES, rng.int(4, 14));
  lines.push(`these ${builds.length} derivations will be built:`);
  for (const name of builds) lines.push(`  /nix/store/${rng.storeHash()}-${name}.drv`);
  const download = rng.between(2, 180);
  lines.push(`these ${fetches.length} paths will be fetched (${download.toFixed(1)} MiB download, ${(download * rng.between(2.5, 4.5)).toFixed(1)} MiB unpacked):`);
  for (const name of fetches) lines.push(`  /nix/store/${rng.storeHash()}-${name}`);
  for (const name of fetches) lines.push(`copying path '/nix/store/${rng.storeHash()}-${name}' from '${rng.pick(CACHES)}'...`);
  const failAt = ctx.outcome === 'success' ? -1 : rng.int(0, builds.length - 1);
  for (let i = 0; i < builds.length; i++) {
    const drv = `/nix/store/${rng.storeHash()}-${builds[i]}.drv`;
    lines.push(`building '${drv}'...`);
    if (i === failAt) {
      lines.push(
        `${builds[i]}> ${RED}error:${RESET} builder failed: test suite returned 2 failures`,
        `${RED}error:${RESET} builder for '${drv}' failed with exit code 1;`,
        `       last 10 log lines:`,
        `       > FAIL: tests/integration.sh (exit status: 1)`,
        `${RED}error:${RESET} 1 dependencies of derivation '/nix/store/${rng.storeHash()}-${darwin ? 'darwin-system' : 'nixos-system'}-${ctx.hostname}.drv' failed to build`,
      );
      return lines.map(nl);
    }
    if (rng.chance(0.4)) lines.push(`${builds[i]}> ${rng.pick(['unpacking sources', 'patching sources', 'configuring', 'building', 'installing', 'post-installation fixup'])}`);
  }
  const systemName = `${darwin ? 'darwin-system' : 'nixos-system'}-${ctx.hostname}-24.11.20241126.${ctx.toCommit}`;
  const systemPath = `/nix/store/${rng.storeHash()}-${systemName}`;
  lines.push(`${BOLD}activating the configuration...${RESET}`);
  if (darwin) {
    lines.push('setting up groups...', 'setting up users...', 'user defaults...', 'setting up launchd services...', 'setting up /Applications/Nix Apps...', `Activating home-manager configuration for ${rng.pick(['alice', 'bob', 'ci'])}`);
  } else {
    const restarted = rng.sample(SERVICES, rng.int(1, 3));
    lines.push('setting up /etc...', 'reloading user units for root...', 'restarting sysinit-reactivation.target');
    lines.push(`restarting the following units: ${restarted.join(', ')}`);
    if (rng.chance(0.3)) lines.push(`the following new units were started: ${rng.pick(SERVICES)}`);
  }
  if (last) lines.push(`${GREEN}Done.${RESET} The new configuration is ${systemPath}`);
  return lines.map(nl);
}

function testLines(ctx: OutputContext, rng: Rng): string[] {
  const checks = rng.sample(CHECKS, rng.int(4, CHECKS.length));
  const lines = [`${DIM}$ nixfleet-check --host ${ctx.hostname}${RESET}`, `running ${checks.length} checks against generation ${ctx.toCommit}`];
  const failAt = ctx.outcome === 'success' ? -1 : rng.int(1, checks.length - 1);
  for (let i = 0; i < checks.length; i++) {
    if (i === failAt) {
      lines.push(`test: ${checks[i]} ... ${RED}FAILED${RESET}`, `  expected success, got: ${rng.pick(['connection refused', 'exit status 3', '1 failed unit: backup.service', 'timeout after 5s'])}`);
      continue;
    }
    lines.push(`test: ${checks[i]} ... ${GREEN}ok${RESET} ${DIM}(${rng.int(3, 900)}ms)${RESET}`);
  }
  const failed = failAt >= 0 ? 1 : 0;
  lines.push(failed ? `${RED}${failed} of ${checks.length} checks failed${RESET}` : `${GREEN}all ${checks.length} checks passed${RESET}`);
  return lines.map(nl);
}

function rollbackLines(ctx: OutputContext, rng: Rng): string[] {
  const command = ctx.hostType === 'macos' ? 'darwin-rebuild --rollback' : 'nixos-rebuild switch --rollback';
  const lines = [`${DIM}$ ${command}${RESET}`, `switching from generation ${rng.int(120, 480)} to the previous one`, `${BOLD}activating the configuration...${RESET}`, 'setting up /etc...', 'reloading user units for root...'];
  if (ctx.outcome === 'error') lines.push(`${RED}error:${RESET} no previous generation to roll back to`);
  else if (ctx.outcome === 'success') lines.push(`${GREEN}Done.${RESET} rolled back to ${ctx.toCommit}`);
  return lines.map(nl);
}

function restartLines(ctx: OutputContext, rng: Rng): string[] {
  const service = rng.pick(SERVICES);
  const lines = [`${DIM}$ systemctl restart ${service}${RESET}`, `Stopping ${service}...`];
  if (ctx.outcome === 'error') lines.push(`${RED}Job for ${service} failed because the control process exited with error code.${RESET}`);
  else if (ctx.outcome === 'success') lines.push(`Started ${service}.`, `${GREEN}●${RESET} ${service} - active (running)`);
  return lines.map(nl);
}

function stopLines(ctx: OutputContext): string[] {
  const lines = [`${DIM}$ nixfleet-agent stop-services${RESET}`, 'stopping managed services...'];
  if (ctx.outcome === 'error') lines.push(`${RED}error:${RESET} nginx.service did not stop within 90s`);
  else if (ctx.outcome === 'success') lines.push(`${GREEN}all managed services stopped${RESET}`);
  return lines.map(nl);
}

function rebootLines(ctx: OutputContext, rng: Rng): string[] {
  const command = ctx.hostType === 'macos' ? 'sudo shutdown -r now' : 'systemctl reboot';
  const lines = [`${DIM}$ ${command}${RESET}`, `Broadcast message from root@${ctx.hostname}: The system will reboot now!`];
  if (ctx.outcome === 'error') lines.push(`${RED}Failed to reboot:${RESET} Transaction for reboot.target/start is destructive (${rng.pick(SERVICES)} has 'stop' job queued).`);
  else if (ctx.outcome === 'success') lines.push('reboot scheduled; the agent reports back when the host is up');
  return lines.map(nl);
}

function nl(line: string): string {
  return `${line}\n`;
}
