/**
 * Chorus messages as Bot API calls: texts as HTML rendered from Markdown (plain text when Telegram
 * refuses the HTML), pictures as photos, media groups and documents, buttons as inline keyboards;
 * and grammY's errors as Chorus's (a 429 is a `RateLimitError`, the rest `AdapterError`s that say
 * whether Telegram refused or could not be reached).
 */
import { type Api, GrammyError, HttpError, InputFile } from 'grammy';
import type { InputMediaPhoto, Message } from 'grammy/types';
import { AdapterError, RateLimitError } from '../../src/errors.ts';
import type { Logger } from '../../src/logger.ts';
import type { ChatAddress, OutgoingImage, OutgoingMessage, SentMessage } from '../../src/message.ts';
import { markdownToTelegramHtml } from './markdown.ts';
import { albumChunks, inlineKeyboard } from './normalize.ts';

/** Pictures larger than this go as documents (the Bot API's limit for photos). */
const photoLimit = 10 * 1024 * 1024;

/**
 * One API call per piece: photos in albums of 2-10 (a lone one as a photo), pictures over 10 MB
 * as documents, and a caption over 1024 characters as its own text message after them. Buttons
 * go on a lone photo or document; albums cannot carry them, so after an album they come on a
 * text message of their own, with the caption (or an arrow pointing up at the pictures).
 */
export function planSend(message: OutgoingMessage): OutgoingMessage[] {
  const images = message.images ?? [];
  if (images.length === 0) return [message];
  const caption = message.text ?? '';
  const fits = caption.length <= 1024;
  const base = {
    ...(message.replyTo !== undefined && { replyTo: message.replyTo }),
    ...(message.format && { format: message.format }),
  };
  const photos = images.filter((image) => 'url' in image || image.data.length <= photoLimit);
  const documents = images.filter((image) => !('url' in image) && image.data.length > photoLimit);
  const parts: OutgoingMessage[] = [...albumChunks(photos), ...documents.map((document) => [document])].map(
    (chunk) => ({
      ...base,
      images: chunk,
    }),
  );
  const buttons = message.buttons?.length ? { buttons: message.buttons } : {};
  const single = parts.length === 1 && parts[0]!.images!.length === 1;
  const trailing = !fits || (message.buttons?.length && !single);
  if (!trailing) parts[0] = { ...parts[0], ...(caption && { text: caption }), ...buttons };
  else parts.push({ ...base, text: caption || '⬆', ...buttons });
  return parts;
}

/** What the adapter sends with: each call mapped to Chorus's errors. */
export interface TelegramSender {
  /** Runs one Bot API call, mapping grammY's errors to Chorus's. */
  call<T>(what: string, request: () => Promise<T>): Promise<T>;
  /** Sends one piece of {@link planSend}: a text, a photo, a media group or a document. */
  send(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage>;
  /** Edits a text message; "message is not modified" is no error. */
  edit(chat: ChatAddress, messageId: string, message: OutgoingMessage): Promise<void>;
}

/** A sender on grammY's `api` for the adapter instance `name`; `log` is the adapter's once started. */
export function createTelegramSender(api: Api, name: string, log: () => Logger | undefined): TelegramSender {
  /** Maps grammY's errors to Chorus's: a 429 becomes a RateLimitError, the rest AdapterErrors. */
  const call = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await request();
    } catch (error) {
      if (error instanceof GrammyError) {
        if (error.error_code === 429) {
          throw new RateLimitError(
            (error.parameters.retry_after ?? 1) * 1000,
            `telegram: ${error.description}`,
            { cause: error },
          );
        }
        throw new AdapterError(name, `telegram refused ${what}: ${error.description}`, {
          remote: true,
          cause: error,
        });
      }
      if (error instanceof HttpError)
        throw new AdapterError(name, `telegram unreachable (${what})`, { remote: false, cause: error });
      throw error;
    }
  };
  const isParseError = (error: unknown) =>
    error instanceof AdapterError &&
    error.cause instanceof GrammyError &&
    /can't parse entities/.test(error.cause.description);

  /** Sends `text` as HTML rendered from Markdown, falling back to plain text if Telegram rejects it. */
  const withFormat = async <T>(
    message: OutgoingMessage,
    text: string,
    send: (text: string, parseMode?: 'HTML') => Promise<T>,
  ) => {
    if (message.format !== 'markdown') return send(text);
    try {
      return await send(markdownToTelegramHtml(text), 'HTML');
    } catch (error) {
      if (!isParseError(error)) throw error;
      log()?.debug('HTML rejected, sending plain text', { error });
      return send(text);
    }
  };

  const target = (chat: ChatAddress, message: OutgoingMessage) => ({
    ...(chat.threadId !== undefined && { message_thread_id: Number(chat.threadId) }),
    ...(message.replyTo !== undefined && {
      reply_parameters: { message_id: Number(message.replyTo), allow_sending_without_reply: true },
    }),
  });

  const inputFile = (image: OutgoingImage, index: number): InputFile | string =>
    'url' in image
      ? image.url
      : new InputFile(
          image.data,
          image.filename ?? `image-${index + 1}.${image.mimeType?.split('/')[1] ?? 'png'}`,
        );

  /** Sends one planned piece: a photo, a media group, a document. */
  async function sendImages(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
    const chatId = Number(chat.id);
    const images = message.images ?? [];
    const first = images[0]!;
    // The caption is rendered like a text (Markdown to HTML, plain if Telegram refuses the HTML).
    const captioned = (text: string, parseMode?: 'HTML') =>
      text ? { caption: text, ...(parseMode && { parse_mode: parseMode }) } : {};
    if (images.length === 1) {
      const large = !('url' in first) && first.data.length > photoLimit;
      const extra = (text: string, parseMode?: 'HTML') => ({
        ...target(chat, message),
        ...captioned(text, parseMode),
        ...(message.buttons?.length && { reply_markup: inlineKeyboard(message.buttons) }),
      });
      const sent = await withFormat<{ message_id: number }>(message, message.text ?? '', (text, parseMode) =>
        large
          ? call('sendDocument', () => api.sendDocument(chatId, inputFile(first, 0), extra(text, parseMode)))
          : call('sendPhoto', () => api.sendPhoto(chatId, inputFile(first, 0), extra(text, parseMode))),
      );
      return { chat, ids: [String(sent.message_id)] };
    }
    const sent = await withFormat(message, message.text ?? '', (text, parseMode) => {
      const media: InputMediaPhoto[] = images.map((image, index) => ({
        type: 'photo',
        media: inputFile(image, index),
        ...(index === 0 ? captioned(text, parseMode) : {}),
      }));
      return call('sendMediaGroup', () => api.sendMediaGroup(chatId, media, target(chat, message)));
    });
    return { chat, ids: sent.map((m) => String(m.message_id)) };
  }

  async function sendText(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
    const sent: Message.TextMessage = await withFormat(message, message.text ?? '', (text, parseMode) =>
      call('sendMessage', () =>
        api.sendMessage(Number(chat.id), text, {
          ...target(chat, message),
          ...(parseMode && { parse_mode: parseMode }),
          ...(message.buttons?.length && { reply_markup: inlineKeyboard(message.buttons) }),
          link_preview_options: { is_disabled: true },
        }),
      ),
    );
    return { chat, ids: [String(sent.message_id)] };
  }

  async function edit(chat: ChatAddress, messageId: string, message: OutgoingMessage): Promise<void> {
    try {
      await withFormat(message, message.text ?? '', (text, parseMode) =>
        call('editMessageText', () =>
          api.editMessageText(Number(chat.id), Number(messageId), text, {
            ...(parseMode && { parse_mode: parseMode }),
            ...(message.buttons && { reply_markup: inlineKeyboard(message.buttons) }),
            link_preview_options: { is_disabled: true },
          }),
        ),
      );
    } catch (error) {
      if (error instanceof AdapterError && /message is not modified/.test(error.message)) return;
      throw error;
    }
  }

  return {
    call,
    send: (chat, part) => (part.images?.length ? sendImages(chat, part) : sendText(chat, part)),
    edit,
  };
}
