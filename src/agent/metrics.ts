// Host metrics for the heartbeat: cpu % since the previous sample, ram % and swap % in use, and
// the 1-minute load. Linux reads /proc; macOS (and anything else) uses node:os, with swap 0.
import { readFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { WireMetrics } from '../protocol/agent-wire.js';

/** What the agent asks for at each heartbeat; null when the host cannot tell. */
export interface MetricsSource {
  sample(): WireMetrics | null;
}

interface CpuTimes {
  busy: number;
  total: number;
}

/** The source for this platform. Its first cpu figure covers the time since it was created. */
export function systemMetrics(platform: NodeJS.Platform = process.platform): MetricsSource {
  return platform === 'linux' ? new ProcMetrics() : new OsMetrics();
}

/** Linux: /proc/stat and /proc/meminfo, the same figures top and free show. */
export class ProcMetrics implements MetricsSource {
  private previous: CpuTimes | null;

  constructor(private readonly readProc: (name: 'stat' | 'meminfo') => string = (name) => readFileSync(`/proc/${name}`, 'utf8')) {
    this.previous = this.cpuTimes();
  }

  sample(): WireMetrics | null {
    try {
      const now = this.cpuTimes();
      const cpu = cpuPercent(this.previous, now);
      this.previous = now;
      const memory = parseMeminfo(this.readProc('meminfo'));
      return { cpu, ram: memory.ram, swap: memory.swap, load: round(loadavg()[0] ?? 0) };
    } catch {
      return null;
    }
  }

  private cpuTimes(): CpuTimes | null {
    try {
      return parseProcStat(this.readProc('stat'));
    } catch {
      return null;
    }
  }
}

/** macOS and others: os.cpus() times and os.freemem(); swap is not exposed there. */
export class OsMetrics implements MetricsSource {
  private previous = osCpuTimes();

  sample(): WireMetrics | null {
    const now = osCpuTimes();
    const cpu = cpuPercent(this.previous, now);
    this.previous = now;
    const total = totalmem();
    const ram = total > 0 ? round(((total - freemem()) / total) * 100) : 0;
    return { cpu, ram, swap: 0, load: round(loadavg()[0] ?? 0) };
  }
}

/** The aggregate `cpu` line: user nice system idle iowait irq softirq steal (guest is inside user). */
export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((candidate) => candidate.startsWith('cpu '));
  if (!line) throw new Error('no cpu line in /proc/stat');
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((sum, value) => sum + (Number.isFinite(value) ? value : 0), 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

export function parseMeminfo(text: string): { ram: number; swap: number } {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\w+):\s+(\d+)/.exec(line);
    if (match) kib.set(match[1]!, Number(match[2]));
  }
  const memTotal = kib.get('MemTotal') ?? 0;
  // MemAvailable (Linux ≥ 3.14) counts reclaimable cache as free, as `free` does.
  const available = kib.get('MemAvailable') ?? (kib.get('MemFree') ?? 0) + (kib.get('Cached') ?? 0) + (kib.get('Buffers') ?? 0);
  const swapTotal = kib.get('SwapTotal') ?? 0;
  const swapFree = kib.get('SwapFree') ?? 0;
  return {
    ram: memTotal > 0 ? round(((memTotal - available) / memTotal) * 100) : 0,
    swap: swapTotal > 0 ? round(((swapTotal - swapFree) / swapTotal) * 100) : 0,
  };
}

export function cpuPercent(before: CpuTimes | null, after: CpuTimes | null): number {
  if (!before || !after) return 0;
  const total = after.total - before.total;
  if (total <= 0) return 0;
  return round(Math.min(100, Math.max(0, ((after.busy - before.busy) / total) * 100)));
}

function osCpuTimes(): CpuTimes {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

/** Two decimals: floats like the original's, without float noise. */
function round(value: number): number {
  return Math.round(value * 100) / 100;
}
