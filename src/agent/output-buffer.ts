// The current command's output lines, numbered 1, 2, 3, … (`seq`) and kept, up to a bound, so
// that what a dropped link lost can be sent again. Past the bound the oldest lines go.
import type { OutputPayload } from '../protocol/agent-wire.js';

export class OutputBuffer {
  private items: OutputPayload[] = [];
  private head = 0;
  private last = 0;
  private droppedCount = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** Seq of the newest line (0: none yet). */
  get lastSeq(): number {
    return this.last;
  }

  /** Seq of the oldest line still kept (lastSeq + 1 when empty). */
  get firstSeq(): number {
    return this.last - this.size + 1;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Lines dropped so far because the buffer was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Numbers the line and keeps it; returns it with its seq, and whether the oldest was dropped. */
  push(line: Omit<OutputPayload, 'seq'>): { payload: OutputPayload; droppedOldest: boolean } {
    const payload: OutputPayload = { ...line, seq: ++this.last };
    this.items.push(payload);
    let droppedOldest = false;
    if (this.size > this.capacity) {
      this.head++;
      this.droppedCount++;
      droppedOldest = true;
      // Compact now and then instead of shifting on every push.
      if (this.head >= this.capacity) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
    }
    return { payload, droppedOldest };
  }

  /** The kept line with this seq, if it is still kept. */
  get(seq: number): OutputPayload | undefined {
    if (seq < this.firstSeq || seq > this.last) return undefined;
    return this.items[this.head + (seq - this.firstSeq)];
  }
}
