// Small helpers shared by the benchmarks: clocks, percentiles from a latency histogram, memory,
// temporary directories and table formatting.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

/** Monotonic nanoseconds; CLOCK_MONOTONIC is shared by every process on the machine. */
export const nowNs = () => Number(process.hrtime.bigint());

/** Latency histogram: 10 µs buckets up to 5 s (the last bucket holds everything above). */
export const BUCKET_NS = 10_000;
export const BUCKETS = 500_000;
export function newHistogram() {
  return new Uint32Array(BUCKETS);
}
export function record(histogram, ns) {
  histogram[Math.min(BUCKETS - 1, Math.max(0, Math.floor(ns / BUCKET_NS)))]++;
}
export function mergeInto(target, sparse) {
  for (const [bucket, count] of sparse) target[bucket] += count;
}
export function toSparse(histogram) {
  const out = [];
  for (let i = 0; i < histogram.length; i++) if (histogram[i]) out.push([i, histogram[i]]);
  return out;
}
/** The q-quantile in milliseconds (upper bucket edge), or null when empty. */
export function quantileMs(histogram, q) {
  let total = 0;
  for (const c of histogram) total += c;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen >= rank) return ((i + 1) * BUCKET_NS) / 1e6;
  }
  return null;
}

export function median(values) {
  const sorted = values.filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** RSS after a full GC when the process runs with --expose-gc. */
export async function settledRss() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await sleep(50);
  }
  return process.memoryUsage().rss;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function withTempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'nixfleet-bench-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const round = (value, digits = 0) => (value === null || value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits)));

/** Waits for `predicate` (polled every `everyMs`) or throws after `timeoutMs`. */
export async function until(predicate, timeoutMs, what, everyMs = 5) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Jiffies the whole machine spent busy and in all, from /proc/stat (null elsewhere): two readings
 * give the cores busy in between, to tell a quiet run from one that shared the machine.
 */
export function machineCpu() {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3] + (fields[4] ?? 0);
    const total = fields.reduce((sum, value) => sum + value, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Cores busy between two machineCpu() readings. */
export function busyCores(before, after) {
  if (!before || !after || after.total === before.total) return null;
  return ((after.busy - before.busy) / (after.total - before.total)) * cpus().length;
}
