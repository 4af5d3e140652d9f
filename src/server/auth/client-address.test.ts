// Client address: X-Forwarded-For is believed only from configured proxies, the real client is
// found behind chains of them, IPv4/IPv6 CIDRs match (mapped IPv4 as IPv4), bad specs throw, and
// the answer is always the peer or an entry of the header.
import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { canonicalIp, clientAddress, parseIp, parseTrustedProxies } from './client-address.js';

const NONE = parseTrustedProxies('');
const LOCAL = parseTrustedProxies('127.0.0.1, ::1');

describe('parseTrustedProxies', () => {
  const trusted = parseTrustedProxies('127.0.0.1, 10.0.0.0/8, ::1, fd00::/8, 192.168.1.0/24,');

  it('counts its entries (a trailing comma is tolerated)', () => {
    expect(trusted.size).toBe(5);
    expect(NONE.size).toBe(0);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.0.0.2', false],
    ['10.0.0.0', true],
    ['10.255.255.255', true],
    ['11.0.0.1', false],
    ['192.168.1.77', true],
    ['192.168.2.1', false],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::2', false],
    ['fd00::1', true],
    ['FD12:3456::abcd', true],
    ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['fe00::1', false],
    ['fc00::1', false],
    ['::ffff:127.0.0.1', true],
    ['::ffff:10.1.2.3', true],
    ['::ffff:7f00:1', true],
    ['::ffff:11.1.2.3', false],
    ['fe80::1%eth0', false],
    ['not-an-ip', false],
    ['', false],
    ['127.0.0.1 ', false],
    ['0127.0.0.1', false],
  ])('contains(%j) is %s', (ip, expected) => {
    expect(trusted.contains(ip)).toBe(expected);
  });

  it('matches an IPv4-mapped CIDR as IPv4 and /0 as everything of its family', () => {
    const mapped = parseTrustedProxies('::ffff:10.0.0.0/104');
    expect(mapped.contains('10.9.9.9')).toBe(true);
    expect(mapped.contains('11.0.0.0')).toBe(false);
    const all = parseTrustedProxies('0.0.0.0/0, ::/0');
    expect(all.contains('203.0.113.9')).toBe(true);
    expect(all.contains('2001:db8::1')).toBe(true);
  });

  it('matches IPv6 prefixes that are not byte-aligned', () => {
    const net = parseTrustedProxies('2001:db8:abc0::/42');
    expect(net.contains('2001:db8:abff:ffff::1')).toBe(true);
    expect(net.contains('2001:db8:ac00::')).toBe(false);
    expect(net.contains('2001:db8:ab80::')).toBe(false);
  });

  it.each([
    ['localhost', /not an IPv4 or IPv6/],
    ['10.0.0.0/33', /prefix length must be 0–32/],
    ['::1/129', /prefix length must be 0–128/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/-1', /prefix length/],
    ['10.0.0.0/8/8', /more than one/],
    ['10.0.0.1/8', /host bits are set; did you mean 10.0.0.0\/8/],
    ['fd00::1/8', /did you mean fd00::\/8/],
    ['256.0.0.1', /not an IPv4/],
    ['010.0.0.1', /not an IPv4/],
    ['1.2.3', /not an IPv4/],
    ['1:2:3:4:5:6:7:8:9', /not an IPv4/],
    ['1::2::3', /not an IPv4/],
    ['1.2.3.4::', /not an IPv4/],
    ['fe80::1%eth0', /zone/],
    ['::ffff:10.0.0.0/90', /at least \/96/],
  ])('rejects %j with a clear message', (spec, message) => {
    expect(() => parseTrustedProxies(`127.0.0.1, ${spec}`)).toThrow(message);
    expect(() => parseTrustedProxies(spec)).toThrow(JSON.stringify(spec));
  });
});

describe('clientAddress', () => {
  it('ignores a spoofed X-Forwarded-For from an untrusted peer', () => {
    expect(clientAddress('203.0.113.9', '1.2.3.4', LOCAL)).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', ['127.0.0.1'], LOCAL)).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', '1.2.3.4', NONE)).toBe('203.0.113.9');
  });

  it('uses the peer when a trusted proxy sends no header', () => {
    expect(clientAddress('127.0.0.1', undefined, LOCAL)).toBe('127.0.0.1');
  });

  it('finds the real client behind a trusted proxy, not what the client claimed', () => {
    expect(clientAddress('127.0.0.1', '198.51.100.7', LOCAL)).toBe('198.51.100.7');
    // The client sent "X-Forwarded-For: 6.6.6.6"; the proxy appended the address it saw.
    expect(clientAddress('127.0.0.1', '6.6.6.6, 198.51.100.7', LOCAL)).toBe('198.51.100.7');
  });

  it('walks chains of several trusted proxies', () => {
    const trusted = parseTrustedProxies('10.0.0.0/8, 127.0.0.1');
    expect(clientAddress('127.0.0.1', '6.6.6.6, 198.51.100.7, 10.1.1.1, 10.2.2.2', trusted)).toBe('198.51.100.7');
    expect(clientAddress('127.0.0.1', ['6.6.6.6, 198.51.100.7', '10.1.1.1', '10.2.2.2'], trusted)).toBe('198.51.100.7');
    // An untrusted hop in the middle ends the walk: what is left of it cannot be verified.
    expect(clientAddress('127.0.0.1', '10.9.9.9, 198.51.100.7, 10.1.1.1', trusted)).toBe('198.51.100.7');
  });

  it('returns the leftmost entry when every hop is a trusted proxy', () => {
    expect(clientAddress('127.0.0.1', '10.0.0.5, 10.0.0.6', parseTrustedProxies('10.0.0.0/8, 127.0.0.1'))).toBe('10.0.0.5');
  });

  it('stops at a malformed entry instead of skipping to the forgeable part', () => {
    const trusted = parseTrustedProxies('10.0.0.0/8, 127.0.0.1');
    expect(clientAddress('127.0.0.1', '6.6.6.6, garbage', trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '6.6.6.6, nonsense, 10.0.0.7', trusted)).toBe('10.0.0.7');
    expect(clientAddress('127.0.0.1', '6.6.6.6,,', trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '', trusted)).toBe('127.0.0.1');
  });

  it('accepts entries with ports or brackets, as some proxies write them', () => {
    expect(clientAddress('::1', '[2001:db8::7]:4711', LOCAL)).toBe('2001:db8::7');
    expect(clientAddress('::1', '198.51.100.7:4711', LOCAL)).toBe('198.51.100.7');
  });

  it('matches IPv6 proxies by CIDR and treats a mapped IPv4 peer as IPv4', () => {
    const trusted = parseTrustedProxies('fd00::/8, 127.0.0.0/8');
    expect(clientAddress('fd12::5', '2001:DB8:0:0::1', trusted)).toBe('2001:db8::1');
    expect(clientAddress('fe80::5', '2001:db8::1', trusted)).toBe('fe80::5');
    expect(clientAddress('::ffff:127.0.0.1', '::ffff:198.51.100.7', trusted)).toBe('198.51.100.7');
    expect(clientAddress('::ffff:203.0.113.9', '1.2.3.4', trusted)).toBe('203.0.113.9');
  });

  it('says unknown when the socket has no address any more', () => {
    expect(clientAddress(undefined, '1.2.3.4', LOCAL)).toBe('unknown');
  });

  it('bounds the work on an enormous forged header', () => {
    const trusted = parseTrustedProxies('10.0.0.0/8');
    const header = Array.from({ length: 100_000 }, () => '10.0.0.1').join(',');
    expect(clientAddress('10.0.0.2', header, trusted)).toBe('10.0.0.1');
  });

  it('always answers the peer or an entry of the header (property)', () => {
    const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('127.0.0.1', '10.0.0.1', '::1', 'fd00::1', '::ffff:10.0.0.2'));
    const entry = fc.oneof(ip, fc.string({ maxLength: 12 }), fc.constant(''));
    const trusted = parseTrustedProxies('127.0.0.1, 10.0.0.0/8, ::1, fd00::/8');
    fc.assert(
      fc.property(ip, fc.array(entry, { maxLength: 8 }), fc.boolean(), (peer, entries, asArray) => {
        const header = asArray ? entries : entries.join(', ');
        const result = clientAddress(peer, header, trusted);
        const candidates = [peer, ...entries.flatMap((e) => e.split(','))].map((e) => canonicalIp(e.trim().replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([\d.]+):\d+$/, '$1')));
        expect(candidates).toContain(result);
        if (!trusted.contains(peer)) expect(result).toBe(canonicalIp(peer));
      }),
    );
  });
});

describe('IP parsing', () => {
  it('agrees with node:net on which strings are IPs', () => {
    const candidate = fc.oneof(fc.ipV4(), fc.ipV6(), fc.stringMatching(/^[0-9a-fA-F:.]{0,20}$/));
    fc.assert(
      fc.property(candidate, (text) => {
        expect(parseIp(text) !== null).toBe(isIP(text) !== 0);
      }),
      { numRuns: 2000 },
    );
  });

  it.each(['1::', '::1.2.3.4', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::ffff:01.2.3.4', '1::2:3:4:5:6:7:8', ':::', '12345::', '::1.2.3', '::1.2.3.4:1', 'fe80::1%eth0', '1.2.3.04'])(
    'agrees with node:net on %j',
    (text) => {
      expect(parseIp(text) !== null).toBe(isIP(text) !== 0);
    },
  );

  it('formats IPv6 canonically (RFC 5952), like the WHATWG URL parser', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const bytes = parseIp(ip)!;
        if (bytes.length === 4) return; // IPv4-mapped: deliberately dotted IPv4
        expect(canonicalIp(ip)).toBe(new URL(`http://[${ip}]/`).hostname.slice(1, -1));
      }),
    );
  });

  it.each([
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::', '::'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['fe80::1%eth0', 'fe80::1'],
    ['not an ip', 'not an ip'],
  ])('canonicalIp(%j) is %j', (ip, canonical) => {
    expect(canonicalIp(ip)).toBe(canonical);
  });
});
