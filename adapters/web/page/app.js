// The chat page: one chat with the bot, over the web adapter's API. It listens to the chat's
// events (GET /api/chats/<chat>/events: the conversation so far, then what happens), sends what is
// typed (POST /api/messages), and presses buttons (POST /api/press). Text from the bot is set as
// text nodes or through renderMarkdown, never as HTML.
import { renderMarkdown, renderPlain } from './markdown.js';

const log = document.getElementById('log');
const form = document.getElementById('composer');
const input = document.getElementById('text');
const state = document.getElementById('state');
const typing = document.getElementById('typing');
/** The messages shown, by id. */
const shown = new Map();
let chat;
let typingTimer;

function element(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

/** Keeps the newest message in view, unless the reader has scrolled up to read. */
function follow(update) {
  const atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  update();
  if (atEnd) window.scrollTo(0, document.body.scrollHeight);
}

function notice(text) {
  const line = element('p', 'notice');
  line.textContent = text;
  follow(() => log.append(line));
}

function setText(node, text, format, partial) {
  const body = node.querySelector('.text');
  const markdown = format === 'markdown' && !partial;
  body.replaceChildren(markdown ? renderMarkdown(text) : renderPlain(text));
  body.classList.toggle('plain', !markdown);
  body.hidden = !text;
  node.toggleAttribute('data-partial', Boolean(partial));
}

function setButtons(node, rows) {
  const box = node.querySelector('.buttons');
  box.replaceChildren(
    ...rows.map((row) => {
      const line = element('div', 'row');
      for (const { label, action, style } of row) {
        const button = element('button', style);
        button.type = 'button';
        button.textContent = label;
        button.addEventListener('click', () => press(node.dataset.id, action, button));
        line.append(button);
      }
      return line;
    }),
  );
  box.hidden = rows.length === 0;
}

function album(urls) {
  const grid = element('div', 'album');
  grid.dataset.count = String(Math.min(urls.length, 4));
  for (const url of urls) {
    if (!url.startsWith('/api/images/') && !/^https:\/\//i.test(url)) continue;
    const link = element('a');
    link.href = url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    const image = element('img');
    image.src = url;
    image.alt = 'a picture from the bot';
    link.append(image);
    grid.append(link);
  }
  return grid;
}

function onMessage(data) {
  if (shown.has(data.id)) return; // seen before the stream reconnected
  const node = element('article', `message ${data.from === 'visitor' ? 'visitor' : 'bot'}`);
  node.dataset.id = data.id;
  if (data.replyTo) node.dataset.replyTo = data.replyTo;
  node.append(element('div', 'text'));
  if (data.images?.length) node.append(album(data.images));
  node.append(element('div', 'buttons'));
  setText(node, data.text ?? '', data.format, data.partial);
  setButtons(node, data.buttons ?? []);
  shown.set(data.id, node);
  follow(() => log.append(node));
  if (data.from === 'bot') typing.hidden = true;
}

function onEdit(data) {
  const node = shown.get(data.id);
  if (!node) return;
  follow(() => {
    setText(node, data.text, data.format, !data.final);
    if (data.buttons) setButtons(node, data.buttons);
  });
}

function onTyping() {
  typing.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => {
    typing.hidden = true;
  }, 5000);
}

function onDone(data) {
  shown.get(data.message)?.setAttribute('data-done', '');
  typing.hidden = true;
}

async function press(message, action, button) {
  button.disabled = true;
  const response = await fetch('/api/press', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ chat, message, action }),
  }).catch(() => undefined);
  if (!response?.ok) {
    button.disabled = false;
    notice('That button did not go through. Try again.');
  }
}

async function send(text) {
  const response = await fetch('/api/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text, chat }),
  }).catch(() => undefined);
  if (!response?.ok) {
    const reason = response
      ? ((await response.json().catch(() => undefined))?.error ?? response.statusText)
      : 'the bot cannot be reached';
    notice(`Not sent: ${reason}`);
    if (!input.value) input.value = text;
    return;
  }
  // The chat's event stream shows the answer; the jobs go on without this response.
  response.body?.cancel().catch(() => {});
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text.trim() || !chat) return;
  input.value = '';
  send(text);
});

input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

async function start() {
  input.focus();
  const response = await fetch('/api/chat').catch(() => undefined);
  if (response?.status === 401) return location.reload();
  if (!response?.ok) {
    state.textContent = 'the bot cannot be reached';
    return;
  }
  ({ chat } = await response.json());
  const events = new EventSource(`/api/chats/${encodeURIComponent(chat)}/events`);
  const on = (type, handle) => events.addEventListener(type, (event) => handle(JSON.parse(event.data)));
  on('message', onMessage);
  on('edit', onEdit);
  on('typing', onTyping);
  on('done', onDone);
  events.addEventListener('open', () => {
    state.textContent = 'connected';
  });
  events.addEventListener('error', () => {
    state.textContent = 'reconnecting…';
  });
}

start();
