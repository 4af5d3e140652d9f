// The simulator's background work: every loop and one-off job runs as a tracked task, errors
// are logged (never thrown), and `drain()` waits until all of them have returned.
import type { Logger } from '../server/index.js';

export class TaskGroup {
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly logger: Logger) {}

  get size(): number {
    return this.running.size;
  }

  /** Runs `job` in the background; returns its (never rejecting) promise, or null once closed. */
  spawn(name: string, job: () => Promise<void>): Promise<void> | null {
    if (this.closed) return null;
    const task = (async () => {
      try {
        await job();
      } catch (error) {
        this.logger.warn('demo task failed', { task: name, error: (error as Error).stack ?? String(error) });
      }
    })();
    this.running.add(task);
    void task.finally(() => this.running.delete(task));
    return task;
  }

  /** Refuses new tasks and resolves once every running one has finished. */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
