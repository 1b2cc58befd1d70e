/**
 * Messages out on Discord: what a message becomes (ten files at most per message; a picture over
 * 10 MiB is left out, with a note), and sending, editing and "typing..." through the one REST
 * client. A reply to a slash command goes through its interaction's webhook while that lives
 * (`interactions.ts`), to the channel after. Nothing ever pings anyone: every send and edit carries
 * `allowed_mentions` with nothing allowed.
 */
import { type REST, Routes } from 'discord.js';
import type { ChatAddress, OutgoingImage, OutgoingMessage, SentMessage } from '../../src/message.ts';
import type { Interactions } from './interactions.ts';
import { channelOf, components, readHandle } from './normalize.ts';
import { callDiscord } from './request.ts';

const fileLimit = 10 * 1024 * 1024;
const noPings = { parse: [], replied_user: false };

/**
 * The pieces `message` goes out in (the adapter's `planSend`): ten files per message; a picture
 * over 10 MiB becomes a note; long captions are the core's to split.
 */
export function planDiscordSend(message: OutgoingMessage): OutgoingMessage[] {
  const images = message.images ?? [];
  if (images.length === 0) return [message];
  const fitting = images.filter((image) => 'url' in image || image.data.length <= fileLimit);
  const tooBig = images.length - fitting.length;
  const base = { ...(message.replyTo !== undefined && { replyTo: message.replyTo }) };
  const parts: OutgoingMessage[] = [];
  for (let i = 0; i < fitting.length; i += 10) parts.push({ ...base, images: fitting.slice(i, i + 10) });
  if (parts[0])
    parts[0] = {
      ...parts[0],
      ...(message.text && { text: message.text }),
      ...(message.buttons && { buttons: message.buttons }),
    };
  if (tooBig > 0)
    parts.push({ ...base, text: `(${tooBig} image(s) over Discord's 10 MiB limit were left out)` });
  return parts;
}

/** Options of {@link createDiscordSender}. */
export interface DiscordSenderOptions {
  /** The adapter's name, for its errors. */
  readonly name: string;
  readonly rest: REST;
  /** The slash commands being answered, whose replies go through their webhooks. */
  readonly interactions: Interactions;
  /** The bot's application id, known once the adapter has started. */
  readonly session: { readonly applicationId: string };
}

/** The adapter's `send`, `edit` and `sendTyping`. */
export function createDiscordSender(options: DiscordSenderOptions): {
  send(chat: ChatAddress, part: OutgoingMessage): Promise<SentMessage>;
  edit(chat: ChatAddress, messageId: string, message: OutgoingMessage): Promise<void>;
  sendTyping(chat: ChatAddress): Promise<void>;
} {
  const { name, rest, interactions, session } = options;
  return {
    /** Sends one piece of `planSend` (the outbox plans once). */
    async send(chat, part) {
      const files = filesOf(part.images);
      const urls = (part.images ?? []).filter((image) => 'url' in image).map((image) => image.url);
      const body = payload(
        urls.length ? { ...part, text: [part.text, ...urls].filter(Boolean).join('\n') } : part,
        files,
      );
      const answers = readHandle(part.replyTo);
      // An expired interaction's replies go to its channel as plain messages.
      const pending =
        answers.interaction === undefined ? undefined : interactions.replyingTo(answers.interaction);
      let sent: { id: string };
      if (pending) {
        await pending.deferred;
        // Claimed before the call, so `settled` never removes a reply on its way.
        const followUp = pending.originalUsed;
        pending.originalUsed = true;
        const route = followUp
          ? Routes.webhook(session.applicationId, pending.token)
          : Routes.webhookMessage(session.applicationId, pending.token, '@original');
        try {
          sent = (await callDiscord(name, 'an interaction reply', () =>
            followUp
              ? rest.post(route, { body, files, auth: false })
              : rest.patch(route, { body, files, auth: false }),
          )) as { id: string };
        } catch (error) {
          if (!followUp) pending.originalUsed = false;
          throw error;
        }
        pending.messages.add(sent.id);
      } else {
        const reference =
          answers.message !== undefined
            ? { message_reference: { message_id: answers.message, fail_if_not_exists: false } }
            : {};
        sent = (await callDiscord(name, 'sendMessage', () =>
          rest.post(Routes.channelMessages(channelOf(chat)), {
            body: { ...body, ...reference },
            files,
          }),
        )) as { id: string };
      }
      return { chat, ids: [sent.id] } satisfies SentMessage;
    },

    /** Edits a message, through the webhook of the interaction that sent it while that lives. */
    async edit(chat, messageId, message) {
      const body = {
        content: message.text ?? '',
        allowed_mentions: noPings,
        ...(message.buttons && { components: components(message.buttons) }),
      };
      const pending = interactions.holding(messageId);
      if (pending) {
        const original = [...pending.messages][0] === messageId;
        await callDiscord(name, 'an interaction edit', () =>
          rest.patch(
            Routes.webhookMessage(session.applicationId, pending.token, original ? '@original' : messageId),
            { body, auth: false },
          ),
        );
        return;
      }
      await callDiscord(name, 'editMessage', () =>
        rest.patch(Routes.channelMessage(channelOf(chat), messageId), { body }),
      );
    },

    async sendTyping(chat) {
      await callDiscord(name, 'typing', () => rest.post(Routes.channelTyping(channelOf(chat))));
    },
  };
}

function payload(message: OutgoingMessage, files: readonly { name: string }[] = []) {
  return {
    content: message.text ?? '',
    allowed_mentions: noPings,
    ...(message.buttons && { components: components(message.buttons) }),
    ...(files.length && { attachments: files.map((file, id) => ({ id: String(id), filename: file.name })) }),
  };
}

/** The pictures of a message that are bytes, as files to upload; those given by URL go as links. */
function filesOf(images: readonly OutgoingImage[] = []) {
  return images.flatMap((image, index) =>
    'url' in image
      ? []
      : [
          {
            name: image.filename ?? `image-${index + 1}.${image.mimeType?.split('/')[1] ?? 'png'}`,
            data: Buffer.from(image.data),
            ...(image.mimeType && { contentType: image.mimeType }),
          },
        ],
  );
}
