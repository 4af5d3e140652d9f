// Host metrics as a smooth random walk: each heartbeat moves cpu/ram/swap a little towards the
// host's resting level (higher while it builds), clamped to 0..100; load follows cpu and cores.
import type { Metrics } from '../protocol/schema.js';
import type { HostProfile } from './names.js';
import type { Rng } from './random.js';

/** What the host is doing, which sets where its usage drifts to. */
export type Activity = 'idle' | 'light' | 'build';

export function initialMetrics(profile: HostProfile, rng: Rng): Metrics {
  const cpu = clampPercent(rng.jitter(profile.baseCpu, 0.3));
  return {
    cpu,
    ram: clampPercent(rng.jitter(profile.baseRam, 0.15)),
    swap: clampPercent(rng.between(0, profile.role === 'db' ? 12 : 4)),
    load: loadFor(cpu, profile, rng),
  };
}

export function nextMetrics(previous: Metrics, profile: HostProfile, activity: Activity, rng: Rng): Metrics {
  const cpuTarget = activity === 'build' ? 88 : activity === 'light' ? Math.max(profile.baseCpu, 45) : profile.baseCpu;
  const ramTarget = profile.baseRam + (activity === 'build' ? 18 : activity === 'light' ? 6 : 0);
  const swapTarget = profile.role === 'db' ? 8 : 1;
  const cpu = clampPercent(previous.cpu + (cpuTarget - previous.cpu) * 0.35 + noise(rng, 6));
  const ram = clampPercent(previous.ram + (ramTarget - previous.ram) * 0.15 + noise(rng, 1.5));
  const swap = clampPercent(previous.swap + (swapTarget - previous.swap) * 0.05 + noise(rng, 0.4));
  return { cpu, ram, swap, load: loadFor(cpu, profile, rng) };
}

function loadFor(cpu: number, profile: HostProfile, rng: Rng): number {
  return round((cpu / 100) * profile.cores * rng.between(0.85, 1.2), 2);
}

/** Roughly normal noise with standard deviation `sigma`. */
function noise(rng: Rng, sigma: number): number {
  return (rng.next() + rng.next() + rng.next() + rng.next() - 2) * sigma * 1.73;
}

function clampPercent(value: number): number {
  return round(Math.min(100, Math.max(0, value)), 1);
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
