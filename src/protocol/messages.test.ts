// The client frame parser (never throws, answers each bad frame with the right code), the
// client's total decoder of server frames (unknown types named, never thrown on), and the
// encoders (JSON of the documented shape).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyState, toFullState } from './fleet-state.js';
import { decodeServerFrame, encodeDelta, encodeDeltaJson, encodeError, encodeSnapshotFrame, encodeSync, parseClientMessage, type ErrorCode } from './messages.js';
import type { Change } from './schema.js';

function expectRejected(text: string, code: ErrorCode): void {
  const result = parseClientMessage(text);
  expect(result).toEqual({ ok: false, code, message: expect.any(String) });
  if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
}

describe('parseClientMessage', () => {
  it('accepts get_state without and with an empty payload', () => {
    expect(parseClientMessage('{"type":"get_state"}')).toEqual({ ok: true, message: { type: 'get_state' } });
    expect(parseClientMessage('{"type":"get_state","payload":{}}')).toEqual({ ok: true, message: { type: 'get_state' } });
    expect(parseClientMessage(' { "payload" : {} , "type" : "get_state" } ')).toEqual({ ok: true, message: { type: 'get_state' } });
  });

  it.each([['not json'], [''], ['{"type":"get_state"'], ["{'type':'get_state'}"], ['{"type":"get_state"} x']])('rejects %j with invalid_json', (text) => {
    expectRejected(text, 'invalid_json');
  });

  it.each([
    ['a number', '42'],
    ['a string', '"get_state"'],
    ['true', 'true'],
    ['null', 'null'],
    ['an array', '[{"type":"get_state"}]'],
    ['an object without type', '{}'],
    ['a numeric type', '{"type":1}'],
    ['a null type', '{"type":null}'],
    ['an object type', '{"type":{"get_state":true}}'],
    ['an extra field', '{"type":"get_state","id":1}'],
    ['a non-empty payload', '{"type":"get_state","payload":{"x":1}}'],
    ['a null payload', '{"type":"get_state","payload":null}'],
    ['an array payload', '{"type":"get_state","payload":[]}'],
    ['a string payload', '{"type":"get_state","payload":""}'],
    ['a __proto__ field', '{"type":"get_state","__proto__":{}}'],
    ['a __proto__ field naming a type', '{"__proto__":{"type":"get_state"}}'],
    ['a constructor field', '{"type":"get_state","constructor":{}}'],
  ])('rejects %s with invalid_message', (_name, text) => {
    expectRejected(text, 'invalid_message');
  });

  it.each([['{"type":"init"}'], ['{"type":"GET_STATE"}'], ['{"type":""}'], ['{"type":"toString"}'], ['{"type":"__proto__"}']])(
    'rejects %s with unknown_type',
    (text) => {
      expectRejected(text, 'unknown_type');
    },
  );

  it('keeps the echo of a huge unknown type short', () => {
    const result = parseClientMessage(JSON.stringify({ type: 'x'.repeat(100_000) }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.code).toBe('unknown_type');
      expect(result.message.length).toBeLessThan(300);
    }
  });

  it('answers a deeply nested frame with an error result instead of throwing', () => {
    const depth = 100_000;
    const nested = `{"type":"get_state","payload":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    let result: ReturnType<typeof parseClientMessage> | undefined;
    expect(() => (result = parseClientMessage(nested))).not.toThrow();
    expect(result?.ok).toBe(false);

    const unbalanced = `{"type":"get_state","payload":${'['.repeat(depth)}}`;
    expect(() => (result = parseClientMessage(unbalanced))).not.toThrow();
    expect(result).toMatchObject({ ok: false, code: 'invalid_json' });
  });

  it('never throws and only accepts get_state, for any input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ type: 'get_state', payload: v }))), (text) => {
        const result = parseClientMessage(text);
        if (result.ok) expect(result.message).toEqual({ type: 'get_state' });
        else expect(['invalid_json', 'invalid_message', 'unknown_type']).toContain(result.code);
      }),
      { numRuns: 500 },
    );
  });
});

const change: Change = { type: 'command_progress', id: 'cmd-1', output: 'line "1"\n😀' };

describe('encoders', () => {
  it('encodeSnapshotFrame splices the state into {type, epoch, version, payload}', () => {
    const state = toFullState(emptyState());
    for (const type of ['init', 'full_state'] as const) {
      const frame = JSON.parse(encodeSnapshotFrame(type, 'epoch-1', 7, JSON.stringify(state)));
      expect(frame).toEqual({ type, epoch: 'epoch-1', version: 7, payload: state });
      expect(Object.keys(frame)).toEqual(['type', 'epoch', 'version', 'payload']);
    }
  });

  it('encodeDelta carries the change as payload', () => {
    const frame = JSON.parse(encodeDelta('e', 42, change));
    expect(frame).toEqual({ type: 'delta', epoch: 'e', version: 42, payload: change });
    expect(Object.keys(frame)).toEqual(['type', 'epoch', 'version', 'payload']);
  });

  it('encodeSync has no payload', () => {
    const frame = JSON.parse(encodeSync('e', 3));
    expect(frame).toEqual({ type: 'sync', epoch: 'e', version: 3 });
    expect(Object.keys(frame)).toEqual(['type', 'epoch', 'version']);
  });

  it('encodeError has a code and a message', () => {
    const frame = JSON.parse(encodeError('rate_limited', 'slow down "now"'));
    expect(frame).toEqual({ type: 'error', code: 'rate_limited', message: 'slow down "now"' });
    expect(Object.keys(frame)).toEqual(['type', 'code', 'message']);
  });

  it('round-trips any epoch string and version through every encoder', () => {
    const epoch = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u2028', '\u0000', '😀', '\ud800', '\udfff', '}', ',') }),
    );
    const stateJson = JSON.stringify(toFullState(emptyState()));
    fc.assert(
      fc.property(epoch, fc.nat(), (e, version) => {
        const snapshot = JSON.parse(encodeSnapshotFrame('init', e, version, stateJson));
        expect(snapshot.epoch).toBe(e);
        expect(snapshot.version).toBe(version);
        expect(snapshot.payload).toEqual(JSON.parse(stateJson));
        expect(JSON.parse(encodeDelta(e, version, change))).toEqual({ type: 'delta', epoch: e, version, payload: change });
        expect(JSON.parse(encodeSync(e, version))).toEqual({ type: 'sync', epoch: e, version });
      }),
      { numRuns: 200 },
    );
  });
});

describe('encodeDeltaJson', () => {
  it('wraps an encoded change into the same bytes as encoding the whole delta', () => {
    const change: Change = { type: 'host_removed', id: 'web-"1"' };
    const expected = JSON.stringify({ type: 'delta', epoch: 'e"1', version: 42, payload: change });
    expect(encodeDeltaJson('e"1', 42, JSON.stringify(change))).toBe(expected);
    expect(encodeDelta('e"1', 42, change)).toBe(expected);
  });
});

describe('decodeServerFrame', () => {
  const position = '"epoch":"e1","version":3';
  const state = '{"hosts":[],"commands":[],"pipelines":[],"events":[],"limits":{"events":1,"commands":1,"pipelines":1,"output_tail":1}}';

  it('decodes every frame of this protocol', () => {
    for (const raw of [
      `{"type":"init",${position},"payload":${state}}`,
      `{"type":"full_state",${position},"payload":${state}}`,
      `{"type":"delta",${position},"payload":{"type":"host_removed","id":"h1"}}`,
      `{"type":"sync",${position}}`,
      '{"type":"error","code":"rate_limited","message":"slow down"}',
    ]) {
      expect(decodeServerFrame(raw)).toMatchObject({ kind: 'message', message: { type: JSON.parse(raw).type } });
    }
  });

  it('names a frame type or a change type it does not know, instead of failing on it', () => {
    expect(decodeServerFrame('{"type":"presence","users":[]}')).toEqual({ kind: 'unknown_frame', type: 'presence' });
    expect(decodeServerFrame(`{"type":"delta",${position},"payload":{"type":"host_presence","id":"h1"}}`)).toEqual({ kind: 'unknown_change', epoch: 'e1', version: 3, changeType: 'host_presence' });
  });

  it('ignores unknown fields of a known frame', () => {
    const decoded = decodeServerFrame(`{"type":"sync",${position},"server_now":"2026-12-01T00:00:00.000Z"}`);
    expect(decoded).toEqual({ kind: 'message', message: { type: 'sync', epoch: 'e1', version: 3 } });
  });

  it.each([
    ['not JSON', '{"type":'],
    ['an array', '[1]'],
    ['no type', '{"epoch":"e1"}'],
    ['a delta without a version', '{"type":"delta","epoch":"e1","payload":{"type":"host_removed","id":"h"}}'],
    ['a version that is not a whole number', `{"type":"sync","epoch":"e1","version":1.5}`],
    ['a version past 2^53', `{"type":"sync","epoch":"e1","version":9007199254740993}`],
    ['an init without a state', `{"type":"init",${position},"payload":{"hosts":[]}}`],
    ['a delta without a change', `{"type":"delta",${position},"payload":"x"}`],
  ])('calls %s invalid', (_what, raw) => {
    expect(decodeServerFrame(raw).kind).toBe('invalid');
  });

  it('never throws, for any input', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json()), (raw) => {
      expect(['message', 'unknown_frame', 'unknown_change', 'invalid']).toContain(decodeServerFrame(raw).kind);
    }), { numRuns: 2000 });
  });
});
