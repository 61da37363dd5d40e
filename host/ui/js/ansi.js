// ANSI SGR colours in log lines, read into text segments with classes: the text is only ever text, never markup.

const ESCAPE = /\x1b\[([0-9;:]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x1b/g;
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** The colour of a 256-colour index beyond the first 16, as CSS. */
function color256(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const level = (k) => (k === 0 ? 0 : 55 + k * 40);
  return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
}

/**
 * Reads lines one after the other (the style carries over from line to
 * line, as on a terminal). `parse(line)` answers `[{text, classes, color,
 * background}]`: classes such as `a-fg-1 a-bold`; `color`/`background` set
 * for 256-colour and true-colour codes.
 */
export class AnsiReader {
  constructor() {
    this.reset();
  }

  reset() {
    this.fg = null;
    this.bg = null;
    this.bold = false;
    this.dim = false;
    this.italic = false;
    this.underline = false;
    this.inverse = false;
  }

  /** A colour from codes `38;5;n` or `38;2;r;g;b` starting at `codes[i]`; answers it and how many codes it took. */
  extended(codes, i) {
    if (codes[i + 1] === 5 && codes.length > i + 2) {
      const n = codes[i + 2];
      return [n < 16 ? { index: n } : { css: color256(n) }, 3];
    }
    if (codes[i + 1] === 2 && codes.length > i + 4) {
      const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.max(0, Math.min(255, v)));
      return [{ css: `rgb(${r},${g},${b})` }, 5];
    }
    return [null, 1];
  }

  sgr(params) {
    const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
    for (let i = 0; i < codes.length; i += 1) {
      const c = codes[i];
      if (c === 0) this.reset();
      else if (c === 1) this.bold = true;
      else if (c === 2) this.dim = true;
      else if (c === 3) this.italic = true;
      else if (c === 4) this.underline = true;
      else if (c === 7) this.inverse = true;
      else if (c === 22) { this.bold = false; this.dim = false; }
      else if (c === 23) this.italic = false;
      else if (c === 24) this.underline = false;
      else if (c === 27) this.inverse = false;
      else if (c >= 30 && c <= 37) this.fg = { index: c - 30 };
      else if (c >= 90 && c <= 97) this.fg = { index: c - 90 + 8 };
      else if (c >= 40 && c <= 47) this.bg = { index: c - 40 };
      else if (c >= 100 && c <= 107) this.bg = { index: c - 100 + 8 };
      else if (c === 39) this.fg = null;
      else if (c === 49) this.bg = null;
      else if (c === 38 || c === 48) {
        const [colour, used] = this.extended(codes, i);
        if (c === 38) this.fg = colour;
        else this.bg = colour;
        i += used - 1;
      }
    }
  }

  style() {
    const classes = [];
    let color = null;
    let background = null;
    let fg = this.fg;
    let bg = this.bg;
    if (this.inverse) [fg, bg] = [bg || { index: 'default-bg' }, fg || { index: 'default-fg' }];
    if (fg) {
      if (fg.css) color = fg.css;
      else classes.push(`a-fg-${fg.index}`);
    }
    if (bg) {
      if (bg.css) background = bg.css;
      else classes.push(`a-bg-${bg.index}`);
    }
    if (this.bold) classes.push('a-bold');
    if (this.dim) classes.push('a-dim');
    if (this.italic) classes.push('a-italic');
    if (this.underline) classes.push('a-underline');
    return { classes: classes.join(' '), color, background };
  }

  /** One line's segments; escape sequences other than colours are dropped, and so is what a carriage return overwrote. */
  parse(line) {
    let text = String(line);
    const cr = text.lastIndexOf('\r');
    if (cr >= 0 && cr < text.length - 1) text = text.slice(cr + 1);
    const segments = [];
    let last = 0;
    const push = (chunk) => {
      const clean = chunk.replace(CONTROL, '');
      if (!clean) return;
      const style = this.style();
      const prev = segments[segments.length - 1];
      if (prev && prev.classes === style.classes && prev.color === style.color && prev.background === style.background) {
        prev.text += clean;
      } else {
        segments.push({ text: clean, ...style });
      }
    };
    ESCAPE.lastIndex = 0;
    for (let m = ESCAPE.exec(text); m; m = ESCAPE.exec(text)) {
      push(text.slice(last, m.index));
      if (m[2] === 'm') this.sgr(m[1] ?? '');
      last = ESCAPE.lastIndex;
    }
    push(text.slice(last));
    return segments;
  }
}
