// Randomness for the simulation: a seedable generator and the few draws the simulator needs
// (ranges, picks, weighted picks, hashes). Everything random in src/demo goes through `Rng`.

export type RandomSource = () => number;

/** A small seedable PRNG (mulberry32), so a test can replay the same fleet. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = '0123456789abcdef';
/** Nix's base-32 alphabet (no e, o, u, t). */
const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

export class Rng {
  constructor(readonly next: RandomSource = Math.random) {}

  /** A float in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return Math.floor(this.between(min, max + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.min(items.length - 1, Math.floor(this.next() * items.length))]!;
  }

  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [key, weight] of entries) {
      roll -= weight;
      if (roll < 0) return key;
    }
    return entries[entries.length - 1]![0];
  }

  /** `count` distinct items in random order (fewer if the list is shorter). */
  sample<T>(items: readonly T[], count: number): T[] {
    const pool = [...items];
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    return pool.slice(0, Math.max(0, count));
  }

  /** `base` ± `fraction` of it. */
  jitter(base: number, fraction = 0.2): number {
    return base * this.between(1 - fraction, 1 + fraction);
  }

  /** A short git hash, like `3f9c0a1`. */
  gitHash(length = 7): string {
    return this.chars(HEX, length);
  }

  /** The hash part of a Nix store path. */
  storeHash(): string {
    return this.chars(NIX_BASE32, 32);
  }

  private chars(alphabet: string, length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.next() * alphabet.length)];
    return out;
  }
}
