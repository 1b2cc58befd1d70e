/**
 * Pure conversion between Telegram's objects and Chorus's: updates to normalized messages and
 * button presses, and outgoing pieces to Bot API parameters. No network: tests call it directly.
 */
import type { CallbackQuery, Chat, Message, User } from 'grammy/types';
import type {
  BotIdentity,
  Button,
  ButtonPress,
  ChatAddress,
  ChatKind,
  ImageRef,
  IncomingMessage,
  UserRef,
} from '../../src/message.ts';

/** Telegram's chat type in Chorus's terms: supergroups are groups. */
export function chatKind(chat: Chat): ChatKind {
  if (chat.type === 'private') return 'private';
  return chat.type === 'channel' ? 'channel' : 'group';
}

/** A Telegram user; first and last name make the display name. */
export function toUser(user: User): UserRef {
  const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
  return {
    id: String(user.id),
    name,
    ...(user.username && { username: user.username }),
    ...(user.is_bot && { isBot: true }),
  };
}

function chatUser(chat: Chat): UserRef {
  const title = 'title' in chat && chat.title ? chat.title : String(chat.id);
  return {
    id: String(chat.id),
    name: title,
    ...('username' in chat && chat.username && { username: chat.username }),
  };
}

/** Where a message lives: the chat, and the forum topic when there is one. */
export function toChat(
  adapter: string,
  message: Pick<Message, 'chat' | 'is_topic_message' | 'message_thread_id'>,
): ChatAddress {
  const { chat } = message;
  const title =
    'title' in chat
      ? chat.title
      : [chat.first_name, 'last_name' in chat ? chat.last_name : ''].filter(Boolean).join(' ');
  return {
    adapter,
    platform: 'telegram',
    id: String(chat.id),
    kind: chatKind(chat),
    // Only forum topics are threads; a reply chain in a plain group is not.
    ...(message.is_topic_message &&
      message.message_thread_id !== undefined && { threadId: String(message.message_thread_id) }),
    ...(title && { title }),
  };
}

function images(message: Message): ImageRef[] {
  if (message.photo?.length) {
    const largest = message.photo.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
    return [
      {
        id: largest.file_id,
        width: largest.width,
        height: largest.height,
        ...(largest.file_size !== undefined && { size: largest.file_size }),
      },
    ];
  }
  const document = message.document;
  if (document?.mime_type?.startsWith('image/')) {
    return [
      {
        id: document.file_id,
        mimeType: document.mime_type,
        ...(document.file_size !== undefined && { size: document.file_size }),
      },
    ];
  }
  return [];
}

/** True when the message mentions the bot: `@botname` or a text mention of the bot's user. */
export function mentionsBot(message: Message, self: BotIdentity): boolean {
  const text = message.text ?? message.caption ?? '';
  const entities = message.entities ?? message.caption_entities ?? [];
  return entities.some((entity) => {
    if (entity.type === 'text_mention') return String(entity.user.id) === self.id;
    if (entity.type !== 'mention') return false;
    return (
      text.slice(entity.offset + 1, entity.offset + entity.length).toLowerCase() ===
      self.username.toLowerCase()
    );
  });
}

/**
 * A Telegram message as a normalized incoming message, or `undefined` for what Chorus ignores:
 * service messages (members joining, topics created, pins) and messages with nothing to read.
 */
export function normalizeMessage(
  adapter: string,
  message: Message,
  self: BotIdentity,
): IncomingMessage | undefined {
  const text = message.text ?? message.caption ?? '';
  const found = images(message);
  if (!text && found.length === 0) return undefined;
  const sender = message.from
    ? toUser(message.from)
    : message.sender_chat
      ? chatUser(message.sender_chat)
      : chatUser(message.chat);
  const reply = message.reply_to_message;
  // In a forum topic every message "replies" to the topic's creation; that is not a reply.
  const realReply = reply && !reply.forum_topic_created ? reply : undefined;
  return {
    id: String(message.message_id),
    chat: toChat(adapter, message),
    sender,
    text,
    mentionsBot: mentionsBot(message, self),
    images: found,
    date: message.date * 1000,
    ...(realReply && {
      replyTo: {
        messageId: String(realReply.message_id),
        fromBot: String(realReply.from?.id) === self.id,
        ...(realReply.from && { senderId: String(realReply.from.id) }),
        ...((realReply.text ?? realReply.caption) !== undefined && {
          text: realReply.text ?? realReply.caption ?? '',
        }),
      },
    }),
  };
}

/** A button press from a callback query, or `undefined` when it carries no data or message. */
export function normalizeCallback(adapter: string, query: CallbackQuery): ButtonPress | undefined {
  if (!query.data || !query.message) return undefined;
  const message = query.message as Message;
  return {
    id: query.id,
    chat: toChat(adapter, message),
    user: toUser(query.from),
    messageId: String(message.message_id),
    action: query.data,
  };
}

/** Buttons as an inline keyboard. An empty list removes the keyboard. */
export function inlineKeyboard(rows: readonly (readonly Button[])[]) {
  return {
    inline_keyboard: rows.map((row) =>
      row.map((button) => ({
        text: button.label,
        // Telegram allows 1-64 bytes of callback data.
        callback_data: Buffer.from(button.action).subarray(0, 64).toString(),
      })),
    ),
  };
}

/** Splits items into albums of 2 to 10 (Telegram's range); a lone item is sent on its own. */
export function albumChunks<T>(items: readonly T[]): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += 10) chunks.push(items.slice(i, i + 10));
  // 11 items would leave 10 + 1: move one over so no album has a single item where avoidable.
  const last = chunks.at(-1);
  const before = chunks.at(-2);
  if (last?.length === 1 && before && before.length > 2) last.unshift(before.pop()!);
  return chunks;
}
