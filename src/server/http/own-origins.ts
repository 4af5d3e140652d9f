// The browser origins this server answers to, decided from where it listens and from
// configuration, never from the Host header a client sends (which a DNS-rebinding page controls).
// Listening on a loopback address, the loopback names are ours; on a named host or address, that
// one; on every interface, every address of this machine's interfaces, and a warning, since the
// names people use to reach it are not knowable here.
import { networkInterfaces } from 'node:os';

export interface OwnOrigins {
  origins: string[];
  /** Set when browsers reaching the server by a name will be refused until origins are configured. */
  warning: string | null;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);
const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

export function ownOrigins(listenHost: string, port: number, secure: boolean, configured: readonly string[]): OwnOrigins {
  const scheme = secure ? 'https' : 'http';
  // Browsers leave the default port out of Origin.
  const suffix = port === (secure ? 443 : 80) ? '' : `:${port}`;
  const origin = (host: string) => `${scheme}://${host}${suffix}`;
  let hosts: string[];
  let warning: string | null = null;
  if (WILDCARDS.has(listenHost)) {
    hosts = [...LOOPBACK, ...interfaceAddresses(listenHost !== '0.0.0.0')];
    if (configured.length === 0) {
      warning = `listening on all interfaces without NIXFLEET_ALLOWED_ORIGINS: browsers may use the dashboard only at this machine's addresses (${origin(hosts[hosts.length - 1] ?? 'localhost')}, …); set NIXFLEET_ALLOWED_ORIGINS=https://fleet.example.org to open it by a name`;
    }
  } else {
    const own = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
    hosts = isLoopback(listenHost) ? [own, ...LOOPBACK] : [own];
  }
  return { origins: [...new Set([...hosts.map(origin), ...configured])], warning };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function interfaceAddresses(withIpv6: boolean): string[] {
  return Object.values(networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .filter((a) => a.family === 'IPv4' || (withIpv6 && a.family === 'IPv6' && !a.address.startsWith('fe80:')))
    .map((a) => (a.family === 'IPv6' ? `[${a.address}]` : a.address));
}
