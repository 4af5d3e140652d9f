// ANSI handling for untrusted command output: a pure parser that keeps SGR styling (ESC[…m) as
// CSS class names and strips every other escape or control sequence (cursor moves, OSC 8
// hyperlinks, titles, DCS…), so nothing in a log can become markup, a link or a terminal command.

export interface AnsiSegment {
  text: string;
  /** CSS classes for this run of text (`ansi-bold`, `ansi-fg-1`, …); empty for plain text. */
  classes: string[];
}

interface Style {
  fg: number | null;
  bg: number | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
  strike: boolean;
}

const PLAIN: Style = Object.freeze({ fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false, strike: false });

const ESC = 0x1b;
const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
const C1_CSI = 0x9b;
const C1_ST = 0x9c;
const C1_OSC = 0x9d;
/** C1 introducers of control strings: DCS, SOS, PM, APC. */
const C1_STRINGS = new Set([0x90, 0x98, 0x9e, 0x9f]);
/** ESC + this character opens a control string that runs until ST: OSC, DCS, SOS, PM, APC. */
const ESC_STRINGS = new Set([']', 'P', 'X', '^', '_']);

/**
 * Splits `input` into runs of text with the classes of their SGR style. Everything that is not
 * printable text, a newline or a tab is dropped; a carriage return (not part of CRLF) lets the
 * following text replace the current line, as progress bars expect. A sequence cut off at the
 * end of the input (the rest is still to come) is dropped too.
 */
export function parseAnsi(input: string): AnsiSegment[] {
  const out: AnsiSegment[] = [];
  let style: Style = PLAIN;
  let classes: string[] = [];
  let key = '';
  let buf = '';
  let pendingCR = false;

  const flush = () => {
    if (buf === '') return;
    const last = out[out.length - 1];
    if (last && last.classes.join(' ') === key) last.text += buf;
    else out.push({ text: buf, classes });
    buf = '';
  };
  const eraseLine = () => {
    const nl = buf.lastIndexOf('\n');
    if (nl >= 0) {
      buf = buf.slice(0, nl + 1);
      return;
    }
    buf = '';
    while (out.length > 0) {
      const seg = out[out.length - 1]!;
      const at = seg.text.lastIndexOf('\n');
      if (at >= 0) {
        seg.text = seg.text.slice(0, at + 1);
        return;
      }
      out.pop();
    }
  };
  const text = (chunk: string) => {
    if (pendingCR) {
      eraseLine();
      pendingCR = false;
    }
    buf += chunk;
  };

  const n = input.length;
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c === ESC || c === C1_CSI || c === C1_OSC || C1_STRINGS.has(c)) {
      const seq = readEscape(input, i);
      if (seq.sgr !== null) {
        const next = applySgr(style, seq.sgr);
        const nextKey = classesOf(next).join(' ');
        if (nextKey !== key) {
          flush();
          style = next;
          classes = classesOf(next);
          key = nextKey;
        } else {
          style = next;
        }
      }
      i = seq.end;
      continue;
    }
    if (c === 0x0a) {
      pendingCR = false;
      buf += '\n';
      i++;
      continue;
    }
    if (c === 0x0d) {
      pendingCR = true;
      i++;
      continue;
    }
    if (c === 0x09) {
      text('\t');
      i++;
      continue;
    }
    if (isControl(c)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && !isControl(input.charCodeAt(j))) j++;
    text(input.slice(i, j));
    i = j;
  }
  flush();
  return out;
}

/** Every character that is not plain text: C0, DEL, C1. */
function isControl(c: number): boolean {
  return c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f);
}

interface Sequence {
  /** Index just past the sequence. */
  end: number;
  /** The parameters of an SGR sequence (`1;31`), or null for any other sequence. */
  sgr: string | null;
}

function readEscape(input: string, start: number): Sequence {
  const c = input.charCodeAt(start);
  if (c === C1_CSI) return readCsi(input, start + 1);
  if (c === C1_OSC || C1_STRINGS.has(c)) return { end: skipString(input, start + 1), sgr: null };
  // ESC
  if (start + 1 >= input.length) return { end: input.length, sgr: null };
  const next = input[start + 1]!;
  if (next === '[') return readCsi(input, start + 2);
  if (ESC_STRINGS.has(next)) return { end: skipString(input, start + 2), sgr: null };
  // nF / Fp / Fe / Fs escapes: intermediates 0x20-0x2F, then one final 0x30-0x7E.
  let i = start + 1;
  while (i < input.length && input.charCodeAt(i) >= 0x20 && input.charCodeAt(i) <= 0x2f) i++;
  if (i >= input.length) return { end: input.length, sgr: null };
  const f = input.charCodeAt(i);
  if (f >= 0x30 && f <= 0x7e) return { end: i + 1, sgr: null };
  // Malformed: drop the ESC (and intermediates) and let the rest be read as text or control.
  return { end: i, sgr: null };
}

/** CSI: parameter bytes 0x30-0x3F, intermediate bytes 0x20-0x2F, one final byte 0x40-0x7E. */
function readCsi(input: string, from: number): Sequence {
  let i = from;
  while (i < input.length && input.charCodeAt(i) >= 0x30 && input.charCodeAt(i) <= 0x3f) i++;
  const paramsEnd = i;
  while (i < input.length && input.charCodeAt(i) >= 0x20 && input.charCodeAt(i) <= 0x2f) i++;
  if (i >= input.length) return { end: input.length, sgr: null };
  const f = input.charCodeAt(i);
  if (f < 0x40 || f > 0x7e) return { end: i, sgr: null }; // malformed: drop what was read
  const params = input.slice(from, paramsEnd);
  const isSgr = f === 0x6d && paramsEnd === i && /^[0-9;:]*$/.test(params);
  return { end: i + 1, sgr: isSgr ? params : null };
}

/**
 * Skips a control string (OSC, DCS, SOS, PM, APC) up to its terminator: BEL, ST (ESC \ or 0x9C);
 * CAN, SUB or another ESC abort it. A newline ends it as well, so a broken sequence cannot hide
 * the rest of a log. Unterminated: runs to the end of the input.
 */
function skipString(input: string, from: number): number {
  for (let i = from; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c === BEL || c === C1_ST || c === CAN || c === SUB) return i + 1;
    if (c === 0x0a) return i;
    if (c === ESC) return input[i + 1] === '\\' ? i + 2 : i;
  }
  return input.length;
}

function applySgr(current: Style, params: string): Style {
  const style: Style = { ...current };
  const tokens = params === '' ? ['0'] : params.split(';');
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]!;
    if (token.includes(':')) {
      // ITU T.416 form with sub-parameters: 38:5:n, 38:2::r:g:b, 38:2:r:g:b, 4:3.
      const parts = token.split(':').map((p) => (p === '' ? NaN : Number(p)));
      const [code] = parts;
      if (code === 38 || code === 48) {
        const color = parts[1] === 5 ? parts[2] : parts[1] === 2 ? rgbToBasic(parts.slice(parts.length - 3)) : undefined;
        setColor(style, code, color);
      } else if (code === 4) {
        style.underline = parts[1] !== 0;
      }
      continue;
    }
    const code = token === '' ? 0 : Number(token);
    if (code === 38 || code === 48) {
      const mode = Number(tokens[t + 1]);
      if (mode === 5) {
        setColor(style, code, Number(tokens[t + 2]));
        t += 2;
      } else if (mode === 2) {
        setColor(style, code, rgbToBasic(tokens.slice(t + 2, t + 5).map(Number)));
        t += 4;
      } else {
        t += 1;
      }
      continue;
    }
    applyCode(style, code);
  }
  return style;
}

function applyCode(style: Style, code: number): void {
  if (code === 0) Object.assign(style, PLAIN);
  else if (code === 1) style.bold = true;
  else if (code === 2) style.dim = true;
  else if (code === 3) style.italic = true;
  else if (code === 4 || code === 21) style.underline = true;
  else if (code === 7) style.inverse = true;
  else if (code === 9) style.strike = true;
  else if (code === 22) style.bold = style.dim = false;
  else if (code === 23) style.italic = false;
  else if (code === 24) style.underline = false;
  else if (code === 27) style.inverse = false;
  else if (code === 29) style.strike = false;
  else if (code >= 30 && code <= 37) style.fg = code - 30;
  else if (code === 39) style.fg = null;
  else if (code >= 40 && code <= 47) style.bg = code - 40;
  else if (code === 49) style.bg = null;
  else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
  else if (code >= 100 && code <= 107) style.bg = code - 100 + 8;
  // Anything else (blink, conceal, fonts, …) is ignored: the text stays visible.
}

function setColor(style: Style, code: 38 | 48, index: number | undefined): void {
  if (index === undefined || !Number.isInteger(index) || index < 0 || index > 255) return;
  const basic = index < 16 ? index : rgbToBasic(xterm256(index));
  if (basic === undefined) return;
  if (code === 38) style.fg = basic;
  else style.bg = basic;
}

/** The 16 basic colours (xterm defaults), to map 256-colour and truecolour to the nearest one. */
const BASIC_RGB: ReadonlyArray<readonly [number, number, number]> = [
  [0, 0, 0], [205, 0, 0], [0, 205, 0], [205, 205, 0], [0, 0, 238], [205, 0, 205], [0, 205, 205], [229, 229, 229],
  [127, 127, 127], [255, 0, 0], [0, 255, 0], [255, 255, 0], [92, 92, 255], [255, 0, 255], [0, 255, 255], [255, 255, 255],
];

function xterm256(index: number): number[] {
  if (index >= 232) {
    const v = 8 + 10 * (index - 232);
    return [v, v, v];
  }
  const i = index - 16;
  const level = (n: number) => (n === 0 ? 0 : 55 + 40 * n);
  return [level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6)];
}

function rgbToBasic(rgb: number[]): number | undefined {
  if (rgb.length !== 3 || rgb.some((v) => !Number.isFinite(v) || v < 0 || v > 255)) return undefined;
  let best = 0;
  let bestDistance = Infinity;
  BASIC_RGB.forEach(([r, g, b], index) => {
    const d = (r - rgb[0]!) ** 2 + (g - rgb[1]!) ** 2 + (b - rgb[2]!) ** 2;
    if (d < bestDistance) {
      bestDistance = d;
      best = index;
    }
  });
  return best;
}

function classesOf(style: Style): string[] {
  const classes: string[] = [];
  if (style.bold) classes.push('ansi-bold');
  if (style.dim) classes.push('ansi-dim');
  if (style.italic) classes.push('ansi-italic');
  if (style.underline) classes.push('ansi-underline');
  if (style.strike) classes.push('ansi-strike');
  const fg = style.inverse ? (style.bg ?? 'inverse') : style.fg;
  const bg = style.inverse ? (style.fg ?? 'inverse') : style.bg;
  if (fg !== null) classes.push(`ansi-fg-${fg}`);
  if (bg !== null) classes.push(`ansi-bg-${bg}`);
  return classes;
}
