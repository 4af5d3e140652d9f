// Time for the agent: injected so that a test or the demo can drive heartbeats, keepalive and
// backoff without waiting on the wall clock.

export interface AgentClock {
  now(): number;
  /** Runs `fn` after `ms`; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: AgentClock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};
