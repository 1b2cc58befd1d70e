/**
 * A small VT100 screen: enough of a terminal (cursor moves, erases, line wrap, scrolling, wide
 * characters) to check what the console adapter leaves on screen, the way a user would see it.
 * Output goes through the terminal driver's usual newline translation (`\n` is CR LF).
 */
import { Writable } from 'node:stream';
import { displayWidth } from '../../adapters/console/normalize.ts';

export class VirtualTerminal extends Writable {
  readonly columns: number;
  readonly rows: number;
  readonly isTTY = true;
  /** Rows scrolled off the top. */
  readonly scrollback: string[][] = [];
  #grid: string[][];
  #row = 0;
  #col = 0;
  #pendingWrap = false;

  constructor(columns = 40, rows = 12) {
    super({ decodeStrings: false });
    this.columns = columns;
    this.rows = rows;
    this.#grid = Array.from({ length: rows }, () => this.#blank());
  }

  override _write(chunk: string | Buffer, _encoding: string, done: () => void): void {
    this.feed(chunk.toString());
    done();
  }

  /** Where the cursor is. */
  get cursor(): { row: number; col: number } {
    return { row: this.#row, col: this.#col };
  }

  /** The visible rows, right-trimmed. */
  screen(): string[] {
    return this.#grid.map((cells) => cells.join('').trimEnd());
  }

  /** Everything ever shown and not erased: the scrollback, then the screen, without trailing empty rows. */
  transcript(): string[] {
    const all = [...this.scrollback, ...this.#grid].map((cells) => cells.join('').trimEnd());
    while (all.length > 0 && all.at(-1) === '') all.pop();
    return all;
  }

  feed(data: string): void {
    for (let i = 0; i < data.length; ) {
      const char = String.fromCodePoint(data.codePointAt(i)!);
      if (char === '\x1b') {
        // biome-ignore lint/suspicious/noControlCharactersInRegex: parsing escape sequences is the point
        const csi = /^\x1b\[([?\d;]*)([@-~])/.exec(data.slice(i));
        if (csi) {
          this.#control(csi[2]!, csi[1]!);
          i += csi[0].length;
        } else i += 2;
        continue;
      }
      i += char.length;
      if (char === '\r') {
        this.#col = 0;
        this.#pendingWrap = false;
      } else if (char === '\n') {
        this.#col = 0;
        this.#pendingWrap = false;
        this.#lineFeed();
      } else if (char >= ' ') this.#put(char);
    }
  }

  #blank(): string[] {
    return Array.from({ length: this.columns }, () => ' ');
  }

  #lineFeed(): void {
    if (this.#row < this.rows - 1) {
      this.#row++;
      return;
    }
    this.scrollback.push(this.#grid.shift()!);
    this.#grid.push(this.#blank());
  }

  #put(char: string): void {
    const width = displayWidth(char);
    if (width === 0) return;
    if (this.#pendingWrap || this.#col + width > this.columns) {
      this.#col = 0;
      this.#pendingWrap = false;
      this.#lineFeed();
    }
    const cells = this.#grid[this.#row]!;
    cells[this.#col] = char;
    if (width === 2) cells[this.#col + 1] = '';
    this.#col += width;
    if (this.#col >= this.columns) {
      this.#col = this.columns - 1;
      this.#pendingWrap = true;
    }
  }

  #control(final: string, params: string): void {
    const n = Number.parseInt(params || '0', 10);
    const count = Math.max(1, n);
    if ('ABCDGHJK'.includes(final)) this.#pendingWrap = false;
    switch (final) {
      case 'A':
        this.#row = Math.max(0, this.#row - count);
        break;
      case 'B':
        this.#row = Math.min(this.rows - 1, this.#row + count);
        break;
      case 'C':
        this.#col = Math.min(this.columns - 1, this.#col + count);
        break;
      case 'D':
        this.#col = Math.max(0, this.#col - count);
        break;
      case 'G':
        this.#col = Math.min(this.columns - 1, count - 1);
        break;
      case 'H': {
        const [row = 1, col = 1] = params.split(';').map((p) => Number.parseInt(p || '1', 10));
        this.#row = Math.min(this.rows - 1, row - 1);
        this.#col = Math.min(this.columns - 1, col - 1);
        break;
      }
      case 'K': {
        const cells = this.#grid[this.#row]!;
        const [from, to] =
          n === 1 ? [0, this.#col + 1] : n === 2 ? [0, this.columns] : [this.#col, this.columns];
        for (let c = from; c < to; c++) cells[c] = ' ';
        break;
      }
      case 'J':
        if (n === 2) this.#grid = Array.from({ length: this.rows }, () => this.#blank());
        else {
          for (let c = this.#col; c < this.columns; c++) this.#grid[this.#row]![c] = ' ';
          for (let r = this.#row + 1; r < this.rows; r++) this.#grid[r] = this.#blank();
        }
        break;
      default: // colours and modes change nothing a test reads
    }
  }
}
