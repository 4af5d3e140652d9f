// The client address of a request: the socket peer, unless the peer is a configured trusted proxy,
// in which case X-Forwarded-For is walked from the right past trusted proxies. Also the IP parsing
// and canonical form used for matching and for rate-limit keys. Pure; no DNS.

/** An IP as bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6. */
export type IpBytes = Uint8Array;

/** The configured proxies whose X-Forwarded-For is believed. */
export interface TrustedProxies {
  contains(ip: string): boolean;
  /** Number of entries; 0 means no proxy is trusted and headers are always ignored. */
  readonly size: number;
}

interface Cidr {
  bytes: IpBytes;
  prefix: number;
}

/**
 * Parses `127.0.0.1, 10.0.0.0/8, ::1, fd00::/8`. Throws an Error naming the entry that is not an
 * IP or CIDR, including a CIDR with host bits set (`10.0.0.1/8` is likely a typo for a /32).
 */
export function parseTrustedProxies(spec: string): TrustedProxies {
  const cidrs: Cidr[] = [];
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue; // tolerate a trailing comma
    cidrs.push(parseCidr(entry));
  }
  return {
    size: cidrs.length,
    contains(ip: string): boolean {
      const bytes = parseIp(ip);
      return bytes !== null && cidrs.some((cidr) => inCidr(bytes, cidr));
    },
  };
}

function parseCidr(entry: string): Cidr {
  const [address = '', prefixText, extra] = entry.split('/');
  const invalid = (why: string): Error => new Error(`invalid trusted proxy ${JSON.stringify(entry)}: ${why}`);
  if (extra !== undefined) throw invalid('more than one "/"');
  if (address.includes('%')) throw invalid('zone indices are not supported');
  const parsed = parseIpStrict(address);
  if (!parsed) throw invalid('not an IPv4 or IPv6 address');
  let prefix = parsed.mapped ? 128 : parsed.bytes.length * 8;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > prefix) throw invalid(`prefix length must be 0–${prefix}`);
    prefix = Number(prefixText);
  }
  // `::ffff:10.0.0.0/104` is the IPv4 range 10.0.0.0/8, since mapped addresses match as IPv4.
  if (parsed.mapped) {
    if (prefix < 96) throw invalid('an IPv4-mapped prefix must be at least /96');
    prefix -= 96;
  }
  const cidr = { bytes: parsed.bytes, prefix };
  if (!sameBytes(maskBytes(parsed.bytes, prefix), parsed.bytes)) {
    throw invalid(`host bits are set; did you mean ${formatIp(maskBytes(parsed.bytes, prefix))}/${prefix}?`);
  }
  return cidr;
}

/**
 * The address to attribute a request to. The header is ignored unless the socket peer is trusted;
 * then the rightmost entry that is not a trusted proxy is the client (entries left of it were
 * written by the client and may be forged). A malformed entry stops the walk at the last trusted
 * hop rather than skipping to the forgeable part. Returns the canonical form (see canonicalIp).
 */
export function clientAddress(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  if (remoteAddress === undefined || remoteAddress === '') return 'unknown'; // socket already gone
  const peer = canonicalIp(remoteAddress);
  if (trusted.size === 0 || !trusted.contains(remoteAddress) || forwardedFor === undefined) return peer;
  const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  // Proxies append, so the header is bounded by the chain length; this cap bounds a forged one.
  let hop = peer;
  for (let i = entries.length - 1, seen = 0; i >= 0 && seen < 64; i--, seen++) {
    const bytes = parseIp(stripPort(entries[i]!.trim()));
    if (bytes === null) return hop;
    hop = formatIp(bytes);
    if (!trusted.contains(hop)) return hop;
  }
  return hop; // every entry was a trusted proxy: the leftmost is the best known origin
}

/** RFC 5952 form (lower case, `::` compression), IPv4-mapped as dotted IPv4; non-IPs unchanged. */
export function canonicalIp(ip: string): string {
  const bytes = parseIp(ip);
  return bytes === null ? ip : formatIp(bytes);
}

/**
 * What one client is counted as, for rate and connection limits: its canonical IPv4, or the /64
 * of an IPv6 address (the block one host usually owns, so rotating addresses inside it gains
 * nothing). Null for something that is not an IP.
 */
export function clientBucket(ip: string): string | null {
  const bytes = parseIp(ip);
  if (bytes === null) return null;
  return bytes.length === 16 ? `${formatIp(maskBytes(bytes, 64))}/64` : formatIp(bytes);
}

/** Parses an IP (a `%zone` suffix is ignored); IPv4-mapped IPv6 yields the 4 IPv4 bytes. */
export function parseIp(ip: string): IpBytes | null {
  if (typeof ip !== 'string' || ip.length > 64) return null;
  return parseIpStrict(ip.replace(/%[\w.~-]+$/, ''))?.bytes ?? null;
}

/** The first `prefix` bits of an address, the rest zero. */
export function maskBytes(bytes: IpBytes, prefix: number): IpBytes {
  return bytes.map((byte, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return byte & ((0xff << (8 - keep)) & 0xff);
  });
}

export function formatIp(bytes: IpBytes): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first if tied.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function inCidr(bytes: IpBytes, cidr: Cidr): boolean {
  return bytes.length === cidr.bytes.length && sameBytes(maskBytes(bytes, cidr.prefix), maskBytes(cidr.bytes, cidr.prefix));
}

function sameBytes(a: IpBytes, b: IpBytes): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** `[v6]:port`, `[v6]` and `v4:port`, which some proxies write into X-Forwarded-For. */
function stripPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(entry);
  return v4 ? v4[1]! : entry;
}

// Dotted decimal without leading zeros: `010.0.0.1` is octal to some parsers, decimal to others.
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseIpStrict(text: string): { bytes: IpBytes; mapped: boolean } | null {
  if (IPV4.test(text)) return { bytes: Uint8Array.from(text.split('.').map(Number)), mapped: false };
  const v6 = parseIpv6(text);
  if (!v6) return null;
  // ::ffff:a.b.c.d is how a dual-stack socket reports an IPv4 peer.
  const isMapped = v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return isMapped ? { bytes: v6.slice(12), mapped: true } : { bytes: v6, mapped: false };
}

function parseIpv6(text: string): IpBytes | null {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  // An embedded IPv4 may only end the address: allowed in the part after `::` or in a whole.
  const groups = (part: string | undefined, last: boolean): number[] | null => {
    if (part === undefined || part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (const [i, piece] of pieces.entries()) {
      if (last && i === pieces.length - 1 && IPV4.test(piece)) {
        const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d); // an embedded IPv4 is the last two groups
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(piece)) out.push(parseInt(piece, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = groups(halves[1], true);
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...tail];
  return Uint8Array.from(all.flatMap((g) => [g >> 8, g & 0xff]));
}
