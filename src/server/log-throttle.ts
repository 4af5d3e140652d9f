// Bounds how fast one message can fill the log. Anyone can make the server log (an aborted
// upload, a refused connection, a busy password queue), so each message (level + text) may be
// written `burst` times per window; the lines held back are counted in the first one written
// after. Messages are the code's own constants, so the map of them stays small.
import type { Logger } from './logger.js';

export interface LogThrottleOptions {
  /** Lines of one message written per window. Default 10. */
  burst?: number;
  /** Default one minute. */
  windowMs?: number;
  now?: () => number;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
}

/** Distinct messages remembered; beyond it the oldest window is dropped. */
const MAX_MESSAGES = 1000;

export function throttledLogger(logger: Logger, options: LogThrottleOptions = {}): Logger {
  const burst = options.burst ?? 10;
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const windows = new Map<string, Window>();

  const gate = (level: keyof Logger) => (msg: string, fields?: Record<string, unknown>) => {
    const key = `${level}\u0000${msg}`;
    const at = now();
    let window = windows.get(key);
    if (!window || at - window.start >= windowMs) {
      const suppressed = window?.suppressed ?? 0;
      windows.delete(key);
      if (windows.size >= MAX_MESSAGES) windows.delete(windows.keys().next().value!);
      window = { start: at, written: 0, suppressed: 0 };
      windows.set(key, window);
      if (suppressed > 0) fields = { ...fields, suppressed };
    }
    if (window.written >= burst) {
      window.suppressed++;
      return;
    }
    window.written++;
    logger[level](msg, window.written === burst ? { ...fields, throttled: `further "${msg}" lines are counted, not written, until ${new Date(window.start + windowMs).toISOString()}` } : fields);
  };
  return { debug: gate('debug'), info: gate('info'), warn: gate('warn'), error: gate('error') };
}
