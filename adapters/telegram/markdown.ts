/**
 * Markdown (as LLMs write it) to Telegram's HTML parse mode. Everything is escaped first; only the
 * constructs Telegram supports become tags: bold, italic, strikethrough, inline code, fenced code
 * blocks (with language), links, headings (as bold) and block quotes. Anything unrecognised stays
 * as escaped text, so the result always parses.
 */

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function inline(text: string): string {
  // Code spans first: their content is literal.
  const spans: string[] = [];
  let out = text.replace(/`([^`\n]+)`/g, (_, code: string) => {
    spans.push(`<code>${escapeHtml(code)}</code>`);
    return `\u{E000}${spans.length - 1}\u{E001}`;
  });
  out = escapeHtml(out);
  out = out.replace(
    /\[([^\]\n]+)\]\((https?:\/\/[^)\s]+)\)/g,
    (_, label: string, url: string) => `<a href="${url.replace(/"/g, '&quot;')}">${label}</a>`,
  );
  out = out
    .replace(/\*\*(?=\S)([^*\n]*?\S)\*\*/g, '<b>$1</b>')
    .replace(/__(?=\S)([^_\n]*?\S)__/g, '<b>$1</b>');
  out = out
    .replace(/(^|[^\w*])\*(?=\S)([^*\n]*?\S)\*(?!\w)/g, '$1<i>$2</i>')
    .replace(/(^|[^\w_])_(?=\S)([^_\n]*?\S)_(?!\w)/g, '$1<i>$2</i>');
  out = out.replace(/~~(?=\S)([^~\n]*?\S)~~/g, '<s>$1</s>');
  // Placeholders from the Unicode private use area, which chat text does not carry.
  return out.replace(/\u{E000}(\d+)\u{E001}/gu, (_, index: string) => spans[Number(index)]!);
}

/** Renders `markdown` as Telegram HTML. */
export function markdownToTelegramHtml(markdown: string): string {
  const lines = markdown.split('\n');
  const out: string[] = [];
  let code: { lang: string; lines: string[] } | undefined;
  let quote: string[] = [];
  const flushQuote = () => {
    if (quote.length) out.push(`<blockquote>${quote.map(inline).join('\n')}</blockquote>`);
    quote = [];
  };
  for (const line of lines) {
    const fence = /^\s*(```|~~~)\s*([\w+-]*)\s*$/.exec(line);
    if (code) {
      if (fence) {
        const body = escapeHtml(code.lines.join('\n'));
        out.push(
          code.lang ? `<pre><code class="language-${code.lang}">${body}</code></pre>` : `<pre>${body}</pre>`,
        );
        code = undefined;
      } else code.lines.push(line);
      continue;
    }
    if (fence) {
      flushQuote();
      code = { lang: fence[2] ?? '', lines: [] };
      continue;
    }
    const quoted = /^>\s?(.*)$/.exec(line);
    if (quoted) {
      quote.push(quoted[1]!);
      continue;
    }
    flushQuote();
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    out.push(heading ? `<b>${inline(heading[1]!)}</b>` : inline(line));
  }
  flushQuote();
  // An unclosed fence (a cut answer) still renders as code.
  if (code) out.push(`<pre>${escapeHtml(code.lines.join('\n'))}</pre>`);
  return out.join('\n');
}
