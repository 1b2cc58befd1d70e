// Markdown to DOM nodes, for text from the bot and its models. Every piece of text goes in as
// textContent and every element is made here, so nothing in the text can become HTML: a <script>
// in an answer is shown as the characters it is. Links go to http(s) addresses only.
//
// Blocks: paragraphs, line breaks, # headings, - and 1. lists, > quotes, ``` fenced code.
// Inline: `code`, **bold**, __bold__, *italic*, _italic_, ~~struck~~, [text](https://...).

// Underscores inside words (snake_case, window.__name) are not emphasis.
const inline =
  /`([^`\n]+)`|\*\*(.+?)\*\*|(?<!\w)__(.+?)__(?!\w)|\*([^*\s](?:[^*]*[^*\s])?)\*|(?<!\w)_([^_\s](?:[^_]*[^_\s])?)_(?!\w)|~~(.+?)~~|\[([^\]\n]+)\]\(([^)\s]+)\)/g;

function element(tag, children) {
  const node = document.createElement(tag);
  for (const child of children) node.append(child);
  return node;
}

/** The inline nodes of one run of text. */
function inlineNodes(text) {
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(inline)) {
    if (match.index > at) nodes.push(text.slice(at, match.index));
    const [, code, bold, bold2, italic, italic2, struck, label, href] = match;
    if (code !== undefined) nodes.push(element('code', [code]));
    else if (bold !== undefined || bold2 !== undefined)
      nodes.push(element('strong', inlineNodes(bold ?? bold2)));
    else if (italic !== undefined || italic2 !== undefined)
      nodes.push(element('em', inlineNodes(italic ?? italic2)));
    else if (struck !== undefined) nodes.push(element('del', inlineNodes(struck)));
    else if (/^https?:\/\//i.test(href)) {
      const link = element('a', inlineNodes(label));
      link.href = href;
      link.target = '_blank';
      link.rel = 'noopener noreferrer nofollow';
      nodes.push(link);
    } else nodes.push(match[0]);
    at = match.index + match[0].length;
  }
  if (at < text.length) nodes.push(text.slice(at));
  return nodes;
}

/** Lines joined with <br>, each with its inline markup. */
function lines(list) {
  const nodes = [];
  list.forEach((line, index) => {
    if (index > 0) nodes.push(document.createElement('br'));
    nodes.push(...inlineNodes(line));
  });
  return nodes;
}

/** `text`, as Markdown, in a fragment. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const all = text.replace(/\r\n?/g, '\n').split('\n');
  for (let i = 0; i < all.length; ) {
    const line = all[i];
    const fence = line.match(/^\s*(```|~~~)/);
    if (fence) {
      const body = [];
      for (i++; i < all.length && !all[i].trimStart().startsWith(fence[1]); i++) body.push(all[i]);
      i++;
      fragment.append(element('pre', [element('code', [body.join('\n')])]));
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      fragment.append(element(`h${Math.min(heading[1].length + 2, 6)}`, inlineNodes(heading[2])));
      i++;
      continue;
    }
    const listKind = /^\s*[-*+]\s+/.test(line) ? 'ul' : /^\s*\d+[.)]\s+/.test(line) ? 'ol' : undefined;
    if (listKind) {
      const marker = listKind === 'ul' ? /^\s*[-*+]\s+/ : /^\s*\d+[.)]\s+/;
      const items = [];
      for (; i < all.length && marker.test(all[i]); i++)
        items.push(element('li', inlineNodes(all[i].replace(marker, ''))));
      fragment.append(element(listKind, items));
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quoted = [];
      for (; i < all.length && /^\s*>/.test(all[i]); i++) quoted.push(all[i].replace(/^\s*>\s?/, ''));
      fragment.append(element('blockquote', lines(quoted)));
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const paragraph = [];
    for (
      ;
      i < all.length && all[i].trim() && !/^(\s*(```|~~~|>|[-*+]\s|\d+[.)]\s)|#{1,6}\s)/.test(all[i]);
      i++
    )
      paragraph.push(all[i]);
    if (paragraph.length === 0) paragraph.push(all[i++]);
    fragment.append(element('p', lines(paragraph)));
  }
  return fragment;
}

/** `text` as it is: the caller shows it with its line breaks (white-space: pre-wrap). */
export function renderPlain(text) {
  return document.createTextNode(text);
}
