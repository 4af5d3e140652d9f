// Lines as a verbose `nixos-rebuild switch` prints them, ~100 bytes each: derivations built and
// paths copied with their store hashes, build phases, compiler lines, configure checks,
// progress. Deterministic for a seed.
const BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';
const NAMES = ['glibc-2.40', 'openssl-3.3.2', 'systemd-256.8', 'linux-6.6.63', 'python3-3.12.7', 'gcc-13.3.0', 'nix-2.24.10', 'coreutils-9.5', 'perl-5.40.0', 'curl-8.11.0', 'nodejs-20.18.1', 'postgresql-16.6', 'nginx-1.26.2', 'mesa-24.2.7', 'llvm-18.1.8', 'rustc-1.82.0', 'zstd-1.5.6', 'bash-5.2p37'];
const FILES = ['src/main.c', 'lib/util.c', 'src/parser.cc', 'crypto/evp/digest.c', 'src/core/unit.c', 'kernel/sched/fair.c', 'Modules/_io/bufferedio.c', 'src/libstore/store-api.cc'];
const CHECKS = ['for stdint.h', 'whether the C compiler works', 'for pthread_create in -lpthread', 'size of long long', 'for library containing dlopen', 'whether byte ordering is bigendian'];

export class NixOutput {
  constructor(seed = 1) {
    this.state = seed >>> 0 || 1;
    this.count = 0;
  }

  random() {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }

  pick(list) {
    return list[Math.floor(this.random() * list.length)];
  }

  hash() {
    let out = '';
    for (let i = 0; i < 32; i++) out += BASE32[Math.floor(this.random() * 32)];
    return out;
  }

  /** The next line, without its newline. */
  next() {
    const n = ++this.count;
    const name = this.pick(NAMES);
    const short = name.replace(/-[\d.p]+$/, '');
    switch (n % 8) {
      case 0:
        return `building '/nix/store/${this.hash()}-${name}.drv'...`;
      case 1:
        return `copying path '/nix/store/${this.hash()}-${name}' from 'https://cache.nixos.org'...`;
      case 2:
        return `${short}> checking ${this.pick(CHECKS)}... yes (cached in /build/${name}/config.cache)`;
      case 3:
        return `${short}> gcc -O2 -pipe -fstack-protector-strong -I./include -c ${this.pick(FILES)} -o build/${n}.o`;
      case 4:
        return `[${n >> 6}/${(n >> 6) + 211} built, ${n >> 4} copied (${(n / 97).toFixed(1)} MiB), ${(n / 331).toFixed(1)} MiB DL] building ${name} (buildPhase, 4 jobs)`;
      case 5:
        return `${short}> Running phase: buildPhase; build flags: SHELL=/nix/store/${this.hash()}-bash`;
      case 6:
        return `${short}>   CC       ${this.pick(FILES).replace(/\.c+$/, '')}.lo   -fPIC -DPIC -o .libs/${n}.o (line ${n})`;
      default:
        return `these 211 derivations will be built: /nix/store/${this.hash()}-${name}.drv (line ${n})`;
    }
  }
}
