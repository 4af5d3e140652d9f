// A synthetic fleet for the benchmarks: realistic hosts (all compartments, metrics) seeded through
// StateManager.applyAll, and heartbeat deltas (host_updated with metrics and last_seen).
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const compartment = (status) => ({ status, message: status === 'ok' ? '' : 'behind origin/main by 3 commits', checked_at: '2026-01-01T00:00:00.000Z' });

export function host(i) {
  return {
    id: `host-${String(i).padStart(5, '0')}`,
    hostname: `host-${String(i).padStart(5, '0')}.fleet.example.org`,
    host_type: i % 7 === 0 ? 'macos' : 'nixos',
    status: i % 13 === 0 ? 'offline' : 'online',
    last_seen: new Date(T0 + i * 1000).toISOString(),
    agent_version: '2.4.1',
    generation: `gen-${1000 + (i % 50)}`,
    os_version: i % 7 === 0 ? '15.1' : '24.11 (Vicuna)',
    nixpkgs_version: '24.11.20250101.abcdef0',
    metrics: { cpu: i % 100, ram: (i * 7) % 100, swap: 0, load: (i % 10) / 4 },
    pending_command: null,
    compartments: { git: compartment('ok'), lock: compartment(i % 5 ? 'ok' : 'outdated'), system: compartment('ok'), tests: compartment('unknown') },
    created_at: '2026-01-01T00:00:00.000Z',
  };
}

export async function seedHosts(manager, count) {
  for (let i = 0; i < count; i += 1000) {
    const changes = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) changes.push({ type: 'host_added', host: host(j) });
    await manager.applyAll(changes);
  }
}

let beat = 0;
/** A heartbeat of one of `hosts` hosts: new metrics and last_seen. */
export function heartbeat(hosts) {
  const n = beat++;
  const i = n % hosts;
  return {
    type: 'host_updated',
    id: `host-${String(i).padStart(5, '0')}`,
    fields: { status: 'online', last_seen: new Date(T0 + n * 10).toISOString(), metrics: { cpu: n % 100, ram: (n * 3) % 100, swap: 0, load: (n % 40) / 10 } },
  };
}
