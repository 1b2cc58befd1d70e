import { createDiscordAdapter } from '../../adapters/discord/index.ts';
import { FakeDiscord } from '../fakes/discord/server.ts';
import { adapterContract } from './contract.ts';

adapterContract(
  'discord',
  async () => {
    const fake = await new FakeDiscord().start();
    const ann = { id: '500000000000000501', username: 'ann', global_name: 'Ann' };
    const dm = fake.dm(ann);
    const adapter = createDiscordAdapter({ token: fake.token, api: `${fake.url}/api` });
    const fromBot = () => fake.channelMessages(dm.id).filter((m) => m.author.id === fake.bot.id);
    return {
      adapter,
      userSays: (text) => void fake.userSays(dm, ann, text),
      botTexts: async () => fromBot().map((m) => m.content),
      botImages: async () => fromBot().reduce((n, m) => n + m.attachments.length, 0),
      press: (messageId, action) => void fake.userPresses(dm, ann, messageId, action),
      close: () => fake.close(),
    };
  },
  { buttons: true },
);
