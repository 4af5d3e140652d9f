// The dashboard's ANSI parser (src/dashboard/ansi.ts): SGR becomes classes, everything else
// that could act on a terminal or a page is stripped, and the text itself is never altered.
import { describe, expect, it } from 'vitest';
import { parseAnsi } from '../src/dashboard/ansi.js';

const text = (input: string) => parseAnsi(input).map((s) => s.text).join('');

describe('parseAnsi', () => {
  it('keeps plain text, markup included, as one unstyled segment', () => {
    const hostile = '<script>alert(1)</script> <img src=x onerror=alert(2)> & "quotes"';
    expect(parseAnsi(hostile)).toEqual([{ text: hostile, classes: [] }]);
  });

  it('turns SGR into classes and resets them', () => {
    expect(parseAnsi('a\x1b[1;31mred\x1b[0mb\x1b[4;92mc\x1b[24md\x1b[mz')).toEqual([
      { text: 'a', classes: [] },
      { text: 'red', classes: ['ansi-bold', 'ansi-fg-1'] },
      { text: 'b', classes: [] },
      { text: 'c', classes: ['ansi-underline', 'ansi-fg-10'] },
      { text: 'd', classes: ['ansi-fg-10'] },
      { text: 'z', classes: [] },
    ]);
  });

  it('maps 256-colour and truecolour to the 16 colours, and reverse video swaps them', () => {
    expect(parseAnsi('\x1b[38;5;196mx')[0]!.classes).toEqual(['ansi-fg-9']);
    expect(parseAnsi('\x1b[38;2;0;0;0;48;5;2mx')[0]!.classes).toEqual(['ansi-fg-0', 'ansi-bg-2']);
    expect(parseAnsi('\x1b[38:2::255:255:255mx')[0]!.classes).toEqual(['ansi-fg-15']);
    expect(parseAnsi('\x1b[7;31mx')[0]!.classes).toEqual(['ansi-fg-inverse', 'ansi-bg-1']);
  });

  it('strips OSC 8 hyperlinks (keeping their text), titles, cursor moves and other escapes', () => {
    expect(parseAnsi('go \x1b]8;;javascript:alert(1)\x07here\x1b]8;;\x1b\\ now')).toEqual([{ text: 'go here now', classes: [] }]);
    expect(text('\x1b]0;title\x07\x1b[2J\x1b[10;20H\x1b[?25lok\x1b(B\x1b7\x1bc\x1bP1$r\x1b\\!')).toBe('ok!');
    expect(text('\x9b31mc1\x9d8;;http://x\x9c link')).toBe('c1 link');
    expect(text('bell\x07 back\x08 nul\x00 del\x7f')).toBe('bell back nul del');
  });

  it('drops a sequence cut off at the end of the output, and an unterminated OSC stops at the line end', () => {
    expect(text('done\x1b[3')).toBe('done');
    expect(text('done\x1b')).toBe('done');
    expect(text('a\x1b]8;;http://never-closed\nnext line')).toBe('a\nnext line');
  });

  it('lets a carriage return overwrite the line, but keeps CRLF line ends', () => {
    expect(text('10%\r55%\r100%\nnext\r\n')).toBe('100%\nnext\n');
    expect(text('\x1b[32mok\x1b[0m\r\x1b[Kdone')).toBe('done');
    expect(text('line\r')).toBe('line');
  });
});
