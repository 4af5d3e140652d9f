// The log throttle: a message repeated by outsiders is written `burst` times per window, the rest
// counted and reported with the next line written; other messages are not affected.
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { throttledLogger } from './log-throttle.js';

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  let now = 0;
  const logger = throttledLogger(createLogger('debug', (line) => lines.push(JSON.parse(line))), { burst: 3, windowMs: 1000, now: () => now });
  return { lines, logger, advance: (ms: number) => (now += ms) };
}

describe('throttledLogger', () => {
  it('writes a repeated message burst times per window, then reports how many it held back', () => {
    const { lines, logger, advance } = setup();
    for (let i = 0; i < 207; i++) logger.error('request failed', { i });
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ msg: 'request failed', i: 2, throttled: expect.stringContaining('counted') });
    advance(1000);
    logger.error('request failed', { i: 999 });
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({ i: 999, suppressed: 204 });
  });

  it('throttles each message and level on its own', () => {
    const { lines, logger } = setup();
    for (let i = 0; i < 10; i++) {
      logger.warn('a');
      logger.warn('b');
      logger.error('a');
    }
    expect(lines.map((l) => `${l.level} ${l.msg}`).sort()).toEqual(['error a', 'error a', 'error a', 'warn a', 'warn a', 'warn a', 'warn b', 'warn b', 'warn b']);
  });
});
