// Configuration from NIXFLEET_* variables: defaults, every variable honoured, and a ConfigError
// naming the variable for each value that makes no sense.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULT_CONFIG, configFromEnv, defaultMaxConnections, parseDuration, parseListen, type ServerConfig } from './config.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
    ['1.5s', 1500],
    ['30', 30_000],
    ['0.5', 500],
    ['10ms', 10],
    [' 5 s ', 5000],
  ])('parses %j as %i ms', (raw, ms) => {
    expect(parseDuration(raw)).toBe(ms);
  });

  it.each([['abc'], ['-1s'], ['10x'], ['5ms'], ['0'], ['25h'], [''], ['   '], ['s'], ['1.s'], ['.5s'], ['1e3'], ['1 2s']])('rejects %j', (raw) => {
    expect(() => parseDuration(raw)).toThrow();
  });

  it('says why a value is out of range', () => {
    expect(() => parseDuration('5ms')).toThrow(/at least 10ms/);
    expect(() => parseDuration('25h')).toThrow(/at most 24h/);
  });
});

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:8000', '127.0.0.1', 8000],
    [':8000', '0.0.0.0', 8000],
    ['[::1]:9000', '::1', 9000],
    ['localhost:0', 'localhost', 0],
    ['0.0.0.0:65535', '0.0.0.0', 65535],
  ])('parses %j as %s port %i', (raw, host, port) => {
    expect(parseListen(raw)).toEqual([host, port]);
  });

  it.each([['8000'], ['host:70000'], ['host:65536'], ['host:'], ['host:port'], ['::1:9000'], ['[::1]9000'], ['']])('rejects %j', (raw) => {
    expect(() => parseListen(raw)).toThrow();
  });
});

describe('configFromEnv', () => {
  it('returns the defaults for an empty environment', () => {
    expect(configFromEnv({})).toEqual({ ...DEFAULT_CONFIG, limits: { ...DEFAULT_CONFIG.limits } });
  });

  it('treats empty and blank variables as unset', () => {
    expect(configFromEnv({ NIXFLEET_SYNC_BEACON_INTERVAL: '', NIXFLEET_LISTEN: '  ', NIXFLEET_LOG_LEVEL: '' })).toEqual(configFromEnv({}));
  });

  it('ignores variables it does not know', () => {
    expect(configFromEnv({ NIXFLEET_SOMETHING_ELSE: 'x', PATH: '/bin' })).toEqual(configFromEnv({}));
  });

  /** Each variable, a valid value, and the part of the config it must change. */
  const honoured: [string, string, Partial<ServerConfig>][] = [
    ['NIXFLEET_LISTEN', '[::]:9001', { listenHost: '::', listenPort: 9001 }],
    ['NIXFLEET_DATA_DIR', '/var/lib/nixfleet', { dataDir: '/var/lib/nixfleet' }],
    ['NIXFLEET_SYNC_BEACON_INTERVAL', '5s', { beaconIntervalMs: 5000 }],
    ['NIXFLEET_PING_INTERVAL', '1m', { pingIntervalMs: 60_000 }],
    ['NIXFLEET_INIT_EVENT_LIMIT', '7', { limits: { ...DEFAULT_CONFIG.limits, events: 7 } }],
    ['NIXFLEET_RECENT_COMMANDS', '0', { limits: { ...DEFAULT_CONFIG.limits, commands: 0 } }],
    ['NIXFLEET_RECENT_PIPELINES', '3', { limits: { ...DEFAULT_CONFIG.limits, pipelines: 3 } }],
    ['NIXFLEET_OUTPUT_TAIL', '1024', { limits: { ...DEFAULT_CONFIG.limits, output_tail: 1024 } }],
    ['NIXFLEET_CLIENT_BUFFER_LIMIT', '2048', { clientBufferLimit: 2048 }],
    ['NIXFLEET_SLOW_CLIENT_TIMEOUT', '250ms', { slowClientTimeoutMs: 250 }],
    ['NIXFLEET_SQLITE_SYNCHRONOUS', 'normal', { sqliteSynchronous: 'NORMAL' }],
    ['NIXFLEET_WS_DEFLATE', 'off', { deflateSnapshots: false }],
    ['NIXFLEET_SNAPSHOT_EVERY', '10', { snapshotEvery: 10 }],
    ['NIXFLEET_CHANGE_LOG_RETENTION', '0', { changeLogRetention: 0 }],
    ['NIXFLEET_LOG_LEVEL', 'debug', { logLevel: 'debug' }],
    ['NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS', '2000', { maxConnectionsPerAddress: 2000 }],
    ['NIXFLEET_MAX_CONNECTIONS', '500', { maxConnections: 500 }],
    ['NIXFLEET_HEADERS_TIMEOUT', '2s', { headersTimeoutMs: 2000 }],
    ['NIXFLEET_REQUEST_TIMEOUT', '1m', { requestTimeoutMs: 60_000 }],
    ['NIXFLEET_IDLE_TIMEOUT', '5m', { idleTimeoutMs: 300_000 }],
    ['NIXFLEET_OUTPUT_MAX_BYTES', '1048576', { outputMaxBytes: 1_048_576 }],
    ['NIXFLEET_OUTPUT_RATE', '4194304', { outputBytesPerSecond: 4_194_304 }],
  ];

  it.each(honoured)('honours %s=%j', (name, value, expected) => {
    expect(configFromEnv({ [name]: value })).toEqual({ ...configFromEnv({}), ...expected });
  });

  it('trims surrounding whitespace from values', () => {
    expect(configFromEnv({ NIXFLEET_SYNC_BEACON_INTERVAL: ' 2s ', NIXFLEET_DATA_DIR: ' /data ' })).toMatchObject({ beaconIntervalMs: 2000, dataDir: '/data' });
  });

  it('honours all variables together', () => {
    const env = Object.fromEntries(honoured.map(([name, value]) => [name, value]));
    const config = configFromEnv(env);
    expect(config).toMatchObject({ listenHost: '::', listenPort: 9001, dataDir: '/var/lib/nixfleet', beaconIntervalMs: 5000, logLevel: 'debug' });
    expect(config.limits).toEqual({ events: 7, commands: 0, pipelines: 3, output_tail: 1024 });
  });

  const invalid: [string, string][] = [
    ['NIXFLEET_LISTEN', '8000'],
    ['NIXFLEET_LISTEN', 'host:70000'],
    ['NIXFLEET_SYNC_BEACON_INTERVAL', 'soon'],
    ['NIXFLEET_SYNC_BEACON_INTERVAL', '5ms'],
    ['NIXFLEET_PING_INTERVAL', '25h'],
    ['NIXFLEET_SLOW_CLIENT_TIMEOUT', '-1s'],
    ['NIXFLEET_INIT_EVENT_LIMIT', '0'],
    ['NIXFLEET_INIT_EVENT_LIMIT', '100001'],
    ['NIXFLEET_RECENT_COMMANDS', '-1'],
    ['NIXFLEET_RECENT_COMMANDS', '1.5'],
    ['NIXFLEET_RECENT_PIPELINES', 'many'],
    ['NIXFLEET_OUTPUT_TAIL', '16777217'],
    ['NIXFLEET_CLIENT_BUFFER_LIMIT', '1023'],
    ['NIXFLEET_SQLITE_SYNCHRONOUS', 'OFF'],
    ['NIXFLEET_WS_DEFLATE', 'gzip'],
    ['NIXFLEET_SNAPSHOT_EVERY', '0'],
    ['NIXFLEET_CHANGE_LOG_RETENTION', '1e3'],
    ['NIXFLEET_LOG_LEVEL', 'verbose'],
    ['NIXFLEET_MAX_CONNECTIONS_PER_ADDRESS', '0'],
    ['NIXFLEET_MAX_CONNECTIONS', 'lots'],
    ['NIXFLEET_HEADERS_TIMEOUT', 'slow'],
    ['NIXFLEET_REQUEST_TIMEOUT', '5ms'],
    ['NIXFLEET_IDLE_TIMEOUT', 'never'],
    ['NIXFLEET_OUTPUT_MAX_BYTES', '16MiB'],
    ['NIXFLEET_OUTPUT_RATE', '100'],
  ];

  it.each(invalid)('throws a ConfigError naming %s for %j', (name, value) => {
    let error: unknown;
    try {
      configFromEnv({ [name]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('invalid_config');
    expect((error as ConfigError).message).toContain(name);
    expect((error as ConfigError).message).toContain(JSON.stringify(value));
  });

  it('refuses a header timeout longer than the request timeout', () => {
    expect(() => configFromEnv({ NIXFLEET_HEADERS_TIMEOUT: '1m', NIXFLEET_REQUEST_TIMEOUT: '30s' })).toThrow(/NIXFLEET_HEADERS_TIMEOUT/);
  });

  it('sizes the default connection cap from the open-file limit, leaving a reserve', () => {
    const dir = mkdtempSync(join(tmpdir(), 'limits-'));
    const file = join(dir, 'limits');
    writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            4096                 524288               files     \n');
    expect(defaultMaxConnections(file)).toBe(4096 - 256);
    expect(defaultMaxConnections(join(dir, 'missing'))).toBe(10_000);
    rmSync(dir, { recursive: true });
  });

  it('covers every variable it honours with an invalid-value case', () => {
    const invalidNames = new Set(invalid.map(([name]) => name));
    for (const [name] of honoured) if (name !== 'NIXFLEET_DATA_DIR') expect(invalidNames, name).toContain(name);
  });
});
