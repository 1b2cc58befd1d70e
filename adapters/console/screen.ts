/**
 * The console on a terminal. The bottom of the screen is the console's own: one live region per
 * message that is still growing (a streamed answer, a status), each labelled with the command that
 * started it, and under them the prompt, where readline edits the line being typed. Everything
 * permanent (final answers, images, log lines) is written above that bottom part, which is then
 * drawn again; the console knows how many rows it drew, so nothing is left behind.
 */
import type { Interface } from 'node:readline';
import { displayPosition, displayWidth, terminalSafe, wrapText } from './normalize.ts';

/** A terminal stream: `columns` and `rows` are its size. */
export type TerminalOutput = NodeJS.WritableStream & { columns?: number; rows?: number };

const dim = (text: string) => `\x1b[2m${text}\x1b[22m`;
const up = (rows: number) => (rows > 0 ? `\x1b[${rows}A` : '');

/** What a terminal shows at its bottom, and how text gets above it. */
export class Screen {
  readonly #output: TerminalOutput;
  readonly #prompt: string;
  #lines: Interface | undefined;
  readonly #live = new Map<string, { label: string; text: string }>();
  /** Rows the live regions took when last drawn (the prompt's rows come from readline). */
  #liveRows = 0;
  #closed = false;

  constructor(output: TerminalOutput, prompt: string) {
    this.#output = output;
    this.#prompt = prompt;
  }

  get #columns(): number {
    return Math.max(20, this.#output.columns ?? 80);
  }

  /** Draws the prompt of `lines` (a terminal readline) under the live regions from now on. */
  attach(lines: Interface): void {
    this.#lines = lines;
    lines.setPrompt(this.#prompt);
    this.#draw('');
  }

  /** Writes `text` above the live regions, for good. `label` marks what it answers. */
  print(text: string, label?: string): void {
    const safe = terminalSafe(text);
    this.#draw(`${label ? `${dim(label)} ` : ''}${safe}\n`);
  }

  /** Log output: written above, as it comes. */
  printRaw(text: string): void {
    const safe = terminalSafe(text.endsWith('\n') ? text.slice(0, -1) : text);
    this.#draw(`${safe}\n`);
  }

  /** Shows (or updates) the live region of message `id`. */
  live(id: string, label: string, text: string): void {
    this.#live.set(id, { label, text: terminalSafe(text) });
    this.#draw('');
  }

  /** Removes the live region of message `id`, if any, without printing it. */
  endLive(id: string): void {
    if (this.#live.delete(id)) this.#draw('');
  }

  /** Readline took a line: what was typed stays on screen above the live regions. */
  submitted(line: string): void {
    // Readline has moved to the row under the typed line: go back over it and the live regions.
    const typed = displayPosition(`${this.#prompt}${line}`, this.#columns).rows + 1;
    this.#draw(`${this.#prompt}${terminalSafe(line)}\n`, typed);
  }

  /** Clears the live regions and the prompt, leaving the cursor at the start of an empty row. */
  close(): void {
    if (this.#closed) return;
    this.#live.clear();
    this.#draw('', undefined, false);
    this.#closed = true;
  }

  /**
   * Goes to the top of the bottom part (`fromRows` above the cursor's row, or where readline's
   * cursor says the prompt starts), clears to the end of the screen, writes `above`, then draws the
   * live regions and the prompt with the cursor where readline had it.
   */
  #draw(above: string, fromRows?: number, withPrompt = true): void {
    if (this.#closed) {
      if (above) this.#output.write(above);
      return;
    }
    const columns = this.#columns;
    const lines = this.#lines;
    const cursor = lines ? lines.getCursorPos() : { rows: 0, cols: 0 };
    let out = `\r${up((fromRows ?? cursor.rows) + this.#liveRows)}\x1b[J${above}`;
    const rows = this.#regionRows(columns);
    this.#liveRows = rows.length;
    for (const row of rows) out += `${row}\n`;
    if (lines && withPrompt) {
      const typed = `${this.#prompt}${lines.line}`;
      out += typed;
      const end = displayPosition(typed, columns);
      const at = fromRows === undefined ? cursor : end;
      // A line that ends exactly at the edge leaves the cursor there; put it on the next row.
      if (end.cols === 0 && end.rows > 0) out += '\r\n';
      out += `${up(end.rows - at.rows)}\r${at.cols > 0 ? `\x1b[${at.cols}C` : ''}`;
    }
    this.#output.write(out);
  }

  /** Each live region, wrapped under its label, at most its share of the screen (its newest rows). */
  #regionRows(columns: number): string[] {
    if (this.#live.size === 0) return [];
    const height = Math.max(8, this.#output.rows ?? 24);
    const share = Math.max(2, Math.floor((height - 2) / this.#live.size));
    const rows: string[] = [];
    for (const { label, text } of this.#live.values()) {
      const indent = Math.min(displayWidth(label) + 1, Math.floor(columns / 3));
      // One column spare: a row that fills the width would leave terminals waiting to wrap.
      const wrapped = wrapText(text.trimEnd() || '…', columns - 2 - indent);
      const shown = wrapped.length > share ? wrapped.slice(wrapped.length - share) : wrapped;
      const cut = shown.length < wrapped.length;
      shown.forEach((row, index) => {
        let head = index === 0 ? `${label}${cut ? '…' : ''}` : '';
        while (displayWidth(head) > indent - 1) head = [...head].slice(0, -1).join('');
        const pad = ' '.repeat(Math.max(1, indent - displayWidth(head)));
        rows.push(`${dim(head)}${pad}${row}`);
      });
    }
    return rows;
  }
}
