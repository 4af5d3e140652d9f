// A digest of a fleet state that does not depend on key order: the server's state and a
// client's folded state are equal exactly when their digests are.
import { createHash } from 'node:crypto';
import { toFullState } from '../../dist/protocol/index.js';

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function stateDigest(state) {
  return createHash('sha256').update(canonical(toFullState(state))).digest('hex').slice(0, 16);
}

export function textDigest(text) {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
