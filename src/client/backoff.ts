// Reconnect delays: exponential backoff with full jitter (AWS, "Exponential Backoff and
// Jitter"), jitter applied after the cap so a fleet of tabs never re-synchronises at the cap.

/** Delay before reconnect attempt `attempt` (0 = the first retry, jittered too). */
export function fullJitterDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
