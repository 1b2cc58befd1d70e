/**
 * Splitting long text into messages that fit a platform's limit: at paragraph, then line, then
 * sentence, then word boundaries, never inside a code block without closing and re-opening its
 * fence, and never dropping a character.
 */

const fence = /^(\s*)(```+|~~~+)(.*)$/;

/**
 * Splits `text` into parts of at most `maxLength` characters (UTF-16 code units, as the platforms
 * count). A part that ends inside a fenced code block gets a closing fence, and the next part
 * re-opens it with the same info string.
 */
export function splitText(text: string, maxLength: number): string[] {
  if (!(Number.isInteger(maxLength) && maxLength >= 32)) {
    throw new TypeError(`maxLength must be an integer >= 32, got ${String(maxLength)}`);
  }
  const parts: string[] = [];
  let rest = text;
  let reopen = '';
  while (reopen.length + rest.length > maxLength) {
    // Room for the re-opened fence before, and a closing fence after, if we end inside a block.
    const budget = maxLength - reopen.length - 4;
    const cut = findCut(rest, budget);
    let head = reopen + rest.slice(0, cut);
    rest = rest.slice(cut);
    const open = openFence(head);
    if (open) {
      head = `${head.replace(/\n?$/, '\n')}${open.marker}`;
      reopen = `${open.marker}${open.info}\n`;
      rest = rest.replace(/^\n/, '');
    } else {
      reopen = '';
    }
    parts.push(head.replace(/\s+$/, ''));
    rest = reopen ? rest : rest.replace(/^\s+/, '');
  }
  // The last part keeps its trailing white space: a stream appends to it.
  const last = reopen + rest;
  if (last.trim().length > 0 || parts.length === 0) parts.push(last);
  return parts;
}

/** Where to cut `text` so the head has at most `budget` characters, preferring natural boundaries. */
function findCut(text: string, budget: number): number {
  const window = text.slice(0, budget + 1);
  const floor = Math.floor(budget / 3); // never make a tiny part to reach a boundary
  for (const boundary of [/\n\s*\n/g, /\n/g, /[.!?。！？]\s/g, /\s/g]) {
    let best = -1;
    for (const match of window.matchAll(boundary)) {
      const end = match.index + match[0].length;
      if (end <= budget && match.index >= floor) best = boundary.source === '\\s' ? match.index + 1 : end;
    }
    if (best > 0) return best;
  }
  // No boundary: a hard cut, but never between the halves of a surrogate pair.
  const code = text.charCodeAt(budget - 1);
  return code >= 0xd800 && code <= 0xdbff ? budget - 1 : budget;
}

/** The fence left open at the end of `text`, if any. */
function openFence(text: string): { marker: string; info: string } | undefined {
  let open: { marker: string; info: string } | undefined;
  for (const line of text.split('\n')) {
    const match = fence.exec(line);
    if (!match) continue;
    const marker = match[2]!;
    if (!open) open = { marker, info: match[3]!.trim() };
    else if (
      marker.startsWith(open.marker[0]!) &&
      marker.length >= open.marker.length &&
      match[3]!.trim() === ''
    ) {
      open = undefined;
    }
  }
  return open;
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` with every lone surrogate (half of a UTF-16 pair, which no encoder accepts) replaced by
 * U+FFFD, as `String.prototype.toWellFormed` does.
 */
export function wellFormed(text: string): string {
  loneSurrogate.lastIndex = 0;
  return loneSurrogate.test(text) ? text.replace(loneSurrogate, '\uFFFD') : text;
}
