// Turns a byte stream (a child's stdout or stderr) into lines: split on \n, keep a trailing
// partial line until the next chunk or the end, decode UTF-8 across chunk boundaries.
import { StringDecoder } from 'node:string_decoder';

/**
 * A line longer than this is emitted in pieces, so a child printing no newline cannot grow
 * memory, and one `output` frame stays far below the server's frame limit (256 KiB) even when
 * every character is JSON-escaped to six bytes (`\u001b`).
 */
export const MAX_LINE_CHARS = 16 * 1024;

export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    const text = this.partial + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.emit(terminalView(line));
    while (this.partial.length > MAX_LINE_CHARS) {
      this.emit(terminalView(this.partial.slice(0, MAX_LINE_CHARS)));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
  }

  /** The stream ended: emits what is left as a last line, if anything. */
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest !== '') this.emit(terminalView(rest));
  }
}

/**
 * What a terminal shows of a line: a CRLF's \r is dropped, and a progress bar that rewrote the
 * line with \r (`10%\r20%\r30%`) shows its last state.
 */
function terminalView(line: string): string {
  const trimmed = line.endsWith('\r') ? line.replace(/\r+$/, '') : line;
  const lastReturn = trimmed.lastIndexOf('\r');
  return lastReturn === -1 ? trimmed : trimmed.slice(lastReturn + 1);
}
