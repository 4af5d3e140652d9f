// Simulated time: every wait in the demo is a `sleep` here, scaled by the speed multiplier, and
// `stop()` cancels all of them at once, so no timer outlives the simulator.

export class SimClock {
  private readonly sleepers = new Map<ReturnType<typeof setTimeout>, (elapsed: boolean) => void>();
  private stoppedFlag = false;

  constructor(readonly speed: number) {
    if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError(`speed must be a positive number, got ${speed}`);
  }

  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** Timers pending now. */
  get pendingTimers(): number {
    return this.sleepers.size;
  }

  /** Waits `simulatedMs` of demo time; resolves true when it elapsed, false once stopped. */
  sleep(simulatedMs: number): Promise<boolean> {
    if (this.stoppedFlag) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleepers.delete(timer);
        resolve(true);
      }, Math.max(0, simulatedMs / this.speed));
      this.sleepers.set(timer, resolve);
    });
  }

  /** Cancels every pending sleep (they resolve false) and refuses new ones. */
  stop(): void {
    this.stoppedFlag = true;
    for (const [timer, resolve] of this.sleepers) {
      clearTimeout(timer);
      resolve(false);
    }
    this.sleepers.clear();
  }
}
