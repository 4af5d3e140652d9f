// permessage-deflate (RFC 7692) for the one frame that is large: the full state in `init` and
// `full_state`. Deflating it per client would cost 1000 compressions of the same bytes in a
// reconnect storm, so, like gorilla/websocket's PreparedMessage, the payload is deflated once per
// version and the same bytes are written to every client that negotiated the extension.
// Deltas and every other frame stay uncompressed: they are small, and compressing them per client
// would cost more CPU than the bytes it saves.
import { constants, deflateRawSync } from 'node:zlib';
import type { WebSocket } from 'ws';
import type { Frame } from '../state-manager.js';

/** Snapshots smaller than this go out uncompressed: a few hundred bytes saved are not worth a deflate. */
export const DEFLATE_MIN_BYTES = 1024;

/**
 * Level 1: on a 10,000-host state (6.8 MB) it takes ~10 ms and shrinks it ~20×; level 6 buys
 * another 20 % for three times the CPU on the event loop.
 */
const DEFLATE_LEVEL = 1;

/** The 4 bytes a sync flush ends with; RFC 7692 §7.2.1 has the sender remove them. */
const SYNC_FLUSH_TAIL = 4;

const deflated = new WeakMap<Frame, Buffer>();

/**
 * The frame's payload as one compressed message, computed on first use and cached with the
 * frame (snapshot frames are cached once per version, so this runs once per version).
 * `onDeflate` is told when a compression actually ran, for the stats.
 */
export function deflatedPayload(frame: Frame, onDeflate?: () => void): Buffer {
  let payload = deflated.get(frame);
  if (!payload) {
    // A sync flush, not a final block: a client that kept its inflate context from earlier
    // messages (no server_no_context_takeover) must still be able to read the next message.
    const stream = deflateRawSync(frame.data, { level: DEFLATE_LEVEL, finishFlush: constants.Z_SYNC_FLUSH });
    payload = stream.subarray(0, stream.length - SYNC_FLUSH_TAIL);
    deflated.set(frame, payload);
    onDeflate?.();
  }
  return payload;
}

/**
 * Whether this socket can take our deflated snapshot: it negotiated permessage-deflate and did not
 * limit the server's window below the 32 KiB (15 bits) our compressor uses. The negotiated
 * parameters are not public in ws (`extensions` names the extension only), hence `_extensions`.
 */
export function acceptsDeflatedSnapshot(ws: WebSocket): boolean {
  const negotiated = (ws as unknown as { _extensions?: Record<string, { params?: Record<string, unknown> } | undefined> })._extensions;
  const params = negotiated?.['permessage-deflate']?.params;
  if (!params) return false;
  const bits = params.server_max_window_bits;
  return bits === undefined || bits === true || Number(bits) >= 15;
}
