// A real network between an agent and the server: a network namespace joined to this one by a
// veth pair, each end with its own address. Taking the host's end down is a real partition (no
// packet passes; sockets on both sides see silence, not a reset). Needs root and `ip`; where the
// machine cannot create namespaces, `createNetns` answers why, and the test says so and skips.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface Netns {
  name: string;
  /** This side's address: where the server listens. */
  hostAddress: string;
  /** The namespace's address. */
  nsAddress: string;
  /** The command prefix that runs a program inside the namespace. */
  exec: string[];
  /** Takes this side's link down (a partition) or up again. */
  link(up: boolean): void;
  remove(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Why namespaces cannot be used here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root: network namespaces need CAP_NET_ADMIN';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return null;
  } catch (error) {
    return `\`ip netns\` does not work here: ${(error as Error).message}`;
  }
}

export function createNetns(): Netns {
  const id = randomBytes(3).toString('hex');
  const name = `nxf-${id}`;
  const hostEnd = `nxh${id}`;
  const nsEnd = `nxn${id}`;
  // A /30 of 10.231.0.0/16 chosen at random, so parallel test files do not collide.
  const block = (parseInt(id, 16) % 16_000) * 4;
  const base = `10.231.${Math.floor(block / 256)}.`;
  const [hostAddress, nsAddress] = [`${base}${(block % 256) + 1}`, `${base}${(block % 256) + 2}`];
  ip('netns', 'add', name);
  try {
    ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd);
    ip('link', 'set', nsEnd, 'netns', name);
    ip('addr', 'add', `${hostAddress}/30`, 'dev', hostEnd);
    ip('link', 'set', hostEnd, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${nsAddress}/30`, 'dev', nsEnd);
    ip('netns', 'exec', name, 'ip', 'link', 'set', nsEnd, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (error) {
    try {
      ip('link', 'del', hostEnd);
    } catch {}
    ip('netns', 'del', name);
    throw error;
  }
  return {
    name,
    hostAddress,
    nsAddress,
    exec: ['ip', 'netns', 'exec', name],
    link: (up) => ip('link', 'set', hostEnd, up ? 'up' : 'down'),
    remove() {
      try {
        ip('link', 'del', hostEnd);
      } catch {}
      try {
        ip('netns', 'del', name);
      } catch {}
    },
  };
}
