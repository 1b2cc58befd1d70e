import { createTelegramAdapter } from '../../adapters/telegram/index.ts';
import { FakeTelegram } from '../fakes/telegram/server.ts';
import { adapterContract } from './contract.ts';

adapterContract(
  'telegram',
  async () => {
    const fake = await new FakeTelegram({ limits: { perChatMs: 0 } }).start();
    const chat = { id: 501, type: 'private' as const, first_name: 'Ann' };
    const ann = { id: 501, is_bot: false, first_name: 'Ann', username: 'ann' };
    const adapter = createTelegramAdapter({
      token: fake.token,
      apiRoot: fake.url,
    });
    const fromBot = () => fake.chatMessages(chat.id).filter((m) => m.from?.id === fake.bot.id);
    return {
      adapter,
      userSays: (text) => void fake.userSays(chat, ann, text),
      botTexts: async () => fromBot().map((m) => m.text ?? m.caption ?? ''),
      botImages: async () => fromBot().filter((m) => m.photo).length,
      press: (messageId, action) => void fake.userPresses(chat, ann, Number(messageId), action),
      close: () => fake.close(),
    };
  },
  { buttons: true },
);
