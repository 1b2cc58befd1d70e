import { createParser } from 'eventsource-parser';
import { createWebAdapter } from '../../adapters/web/index.ts';
import { adapterContract } from './contract.ts';

/** The chat's events as a page that loads now gets them: what it holds, then nothing for a moment. */
async function replay(base: URL, chat: string): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const controller = new AbortController();
  const response = await fetch(new URL(`/api/chats/${chat}/events`, base), { signal: controller.signal });
  const parser = createParser({
    onEvent: (event) => events.push({ type: event.event ?? '', data: JSON.parse(event.data) }),
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const next = await Promise.race([
      reader.read(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 50)),
    ]);
    if (!next || next.done) break;
    parser.feed(next.value);
  }
  controller.abort();
  return events;
}

adapterContract(
  'web',
  async () => {
    const adapter = createWebAdapter({ port: 0 });
    const chat = 'contract-chat';
    const base = () => adapter.url!;
    return {
      adapter,
      userSays: (text) => {
        if (!adapter.url) return;
        void fetch(new URL('/api/messages', base()), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ text, chat }),
        })
          .then((response) => response.body?.cancel())
          .catch(() => {});
      },
      botTexts: async () => {
        const texts = new Map<string, string>();
        for (const { type, data } of await replay(base(), chat)) {
          if (type === 'message' && data.from === 'bot') texts.set(String(data.id), String(data.text ?? ''));
          if (type === 'edit') texts.set(String(data.id), String(data.text));
        }
        return [...texts.values()];
      },
      botImages: async () => {
        let count = 0;
        for (const { type, data } of await replay(base(), chat))
          if (type === 'message' && Array.isArray(data.images)) {
            for (const url of data.images as string[])
              if ((await fetch(new URL(url, base()))).headers.get('content-type') === 'image/png') count++;
          }
        return count;
      },
      press: (message, action) =>
        void fetch(new URL('/api/press', base()), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ chat, message, action }),
        }),
      close: async () => {},
    };
  },
  { buttons: true },
);
