/** Pure helpers of the console adapter: the console chat and user, and how things print. */
import type { ChatAddress, UserRef } from '../../src/message.ts';

/** The one chat of a console adapter. */
export function consoleChat(adapter: string): ChatAddress {
  return { adapter, platform: 'console', id: 'console', kind: 'private', title: 'Console' };
}

/** The person at the terminal. */
export function consoleUser(name: string): UserRef {
  return { id: 'console-user', name, username: name };
}

/** A file extension for image bytes, from the MIME type or the bytes' signature. */
export function imageExtension(data: Uint8Array, mimeType?: string): string {
  const fromMime = mimeType?.match(/^image\/(png|jpeg|gif|webp)$/)?.[1];
  if (fromMime) return fromMime === 'jpeg' ? 'jpg' : fromMime;
  if (data[0] === 0x89 && data[1] === 0x50 && data[2] === 0x4e && data[3] === 0x47) return 'png';
  if (data[0] === 0xff && data[1] === 0xd8) return 'jpg';
  if (data[0] === 0x47 && data[1] === 0x49 && data[2] === 0x46) return 'gif';
  if (data[8] === 0x57 && data[9] === 0x45 && data[10] === 0x42 && data[11] === 0x50) return 'webp';
  return 'bin';
}

/** Columns a code point takes on a terminal: 0 (combining, zero-width), 1, or 2 (East Asian wide, emoji). */
function codePointWidth(code: number): number {
  if (code < 0x20 || (code >= 0x7f && code < 0xa0)) return 0;
  if (code === 0x200b || code === 0x200c || code === 0x200d || (code >= 0xfe00 && code <= 0xfe0f)) return 0;
  if (/\p{Mn}|\p{Me}/u.test(String.fromCodePoint(code))) return 0;
  if (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf && code !== 0x303f) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1faff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Columns `text` takes on a terminal (no control sequences in it). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += codePointWidth(char.codePointAt(0)!);
  return width;
}

/**
 * Where the cursor ends after writing `text` from column 0 on a terminal `columns` wide, counted
 * the way Node's readline counts (a wide character never straddles the edge).
 */
export function displayPosition(text: string, columns: number): { rows: number; cols: number } {
  let rows = 0;
  let offset = 0;
  for (const char of text) {
    if (char === '\n') {
      rows += Math.ceil(offset / columns) || 1;
      offset = 0;
      continue;
    }
    const width = codePointWidth(char.codePointAt(0)!);
    if (width === 2 && (offset + 1) % columns === 0) offset++;
    offset += width;
  }
  const cols = offset % columns;
  return { rows: rows + (offset - cols) / columns, cols };
}

/**
 * Text from a plugin or backend made safe for a terminal: no escape sequences or other control
 * characters (a hostile answer must not clear the screen or move the cursor); tabs become spaces.
 */
export function terminalSafe(text: string): string {
  return (
    text
      // biome-ignore lint/suspicious/noControlCharactersInRegex: removing escape sequences is the point
      .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, '')
      .replace(/\r\n?/g, '\n')
      .replace(/\t/g, '    ')
      // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
      .replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '')
  );
}

/**
 * Splits `text` into rows of at most `width` columns: at its line breaks, then at spaces where a
 * line is too long, and inside a word only when the word alone is too long.
 */
export function wrapText(text: string, width: number): string[] {
  const rows: string[] = [];
  for (const line of text.split('\n')) {
    let row = '';
    let rowWidth = 0;
    for (const word of line.split(/(?<= )/)) {
      const wordWidth = displayWidth(word);
      if (rowWidth + displayWidth(word.trimEnd()) <= width) {
        row += word;
        rowWidth += wordWidth;
        continue;
      }
      if (row) rows.push(row.trimEnd());
      row = '';
      rowWidth = 0;
      for (const char of word) {
        const charWidth = displayWidth(char);
        if (rowWidth + charWidth > width && char !== ' ') {
          rows.push(row);
          row = '';
          rowWidth = 0;
        }
        row += char;
        rowWidth += charWidth;
      }
    }
    rows.push(row.trimEnd());
  }
  return rows;
}
