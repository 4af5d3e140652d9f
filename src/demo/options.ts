// The demo's command line: `--hosts N` (or NIXFLEET_DEMO_HOSTS, default 12) and `--speed X`
// (default 1), validated with a message that says what is wrong. No other flags.

export interface DemoOptions {
  hosts: number;
  speed: number;
  help: boolean;
}

export class DemoUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DemoUsageError';
  }
}

export const DEMO_USAGE = `usage: npm run demo -- [--hosts N] [--speed X]

  --hosts N   simulated hosts, a whole number from 1 to 500 (default 12, or NIXFLEET_DEMO_HOSTS)
  --speed X   time multiplier: 2 runs the fleet twice as fast (default 1, from 0.1 to 100)

The server reads the usual NIXFLEET_* variables; its data lives in ./data/demo unless
NIXFLEET_DATA_DIR is set.`;

export function parseDemoOptions(argv: readonly string[], env: Record<string, string | undefined> = {}): DemoOptions {
  let hostsRaw: { value: string; from: string } | null = null;
  let speedRaw: string | null = null;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    const match = /^(--hosts|--speed)(?:=(.*))?$/.exec(arg);
    if (!match) throw new DemoUsageError(`unknown argument ${JSON.stringify(arg)}`);
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new DemoUsageError(`${match[1]} needs a value`);
    if (match[1] === '--hosts') hostsRaw = { value, from: '--hosts' };
    else speedRaw = value;
  }
  if (hostsRaw === null && env.NIXFLEET_DEMO_HOSTS !== undefined && env.NIXFLEET_DEMO_HOSTS.trim() !== '') {
    hostsRaw = { value: env.NIXFLEET_DEMO_HOSTS, from: 'NIXFLEET_DEMO_HOSTS' };
  }
  return {
    hosts: hostsRaw === null ? 12 : parseHosts(hostsRaw.value, hostsRaw.from),
    speed: speedRaw === null ? 1 : parseSpeed(speedRaw),
    help,
  };
}

function parseHosts(raw: string, from: string): number {
  const value = raw.trim();
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 500) {
    throw new DemoUsageError(`${from} must be a whole number from 1 to 500, got ${JSON.stringify(raw)}`);
  }
  return Number(value);
}

function parseSpeed(raw: string): number {
  const value = raw.trim();
  const speed = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || speed < 0.1 || speed > 100) {
    throw new DemoUsageError(`--speed must be a number from 0.1 to 100, got ${JSON.stringify(raw)}`);
  }
  return speed;
}
