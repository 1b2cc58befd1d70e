/**
 * Pure conversion between discord.js's objects and Chorus's. The input types are the few fields
 * used, so tests can pass plain objects; discord.js's Message and interactions fit them.
 */
import type {
  BotIdentity,
  Button,
  ButtonPress,
  ChatAddress,
  CommandSpec,
  IncomingMessage,
  UserRef,
} from '../../src/index.ts';

/** The parts of a discord.js channel that matter here. */
export interface ChannelLike {
  readonly id: string;
  readonly type: number;
  readonly parentId?: string | null;
  readonly name?: string | null;
  isThread(): boolean;
  isDMBased(): boolean;
}

/** The parts of a discord.js User that matter here. */
export interface UserLike {
  readonly id: string;
  readonly username: string;
  readonly globalName?: string | null;
  readonly bot: boolean;
}

/** The parts of a discord.js Message that matter here. */
export interface MessageLike {
  readonly id: string;
  readonly content: string;
  readonly createdTimestamp: number;
  readonly author: UserLike;
  readonly channel: ChannelLike;
  readonly mentions: { readonly users: { has(id: string): boolean }; readonly repliedUser?: UserLike | null };
  readonly reference?: { readonly messageId?: string | undefined } | null;
  readonly attachments: { values(): Iterable<AttachmentLike> };
}

/** The parts of a discord.js Attachment that matter here. */
export interface AttachmentLike {
  readonly id: string;
  readonly url: string;
  readonly contentType: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly size: number;
}

/** A Discord user; the display name wins over the username. */
export function toUser(user: UserLike): UserRef {
  return {
    id: user.id,
    name: user.globalName || user.username,
    username: user.username,
    ...(user.bot && { isBot: true }),
  };
}

/** A Discord channel as a chat: DMs are private, guild channels groups; a thread keeps its parent as the chat. */
export function toChat(adapter: string, channel: ChannelLike): ChatAddress {
  if (channel.isDMBased()) return { adapter, platform: 'discord', id: channel.id, kind: 'private' };
  if (channel.isThread() && channel.parentId) {
    return {
      adapter,
      platform: 'discord',
      id: channel.parentId,
      kind: 'group',
      threadId: channel.id,
      ...(channel.name && { title: channel.name }),
    };
  }
  return {
    adapter,
    platform: 'discord',
    id: channel.id,
    kind: 'group',
    ...(channel.name && { title: channel.name }),
  };
}

/** The channel to send to: the thread when there is one. */
export function channelOf(chat: ChatAddress): string {
  return chat.threadId ?? chat.id;
}

/** A message as a normalized incoming message. The bot's `<@id>` mention is left in the text. */
export function normalizeMessage(adapter: string, message: MessageLike, self: BotIdentity): IncomingMessage {
  const images = [...message.attachments.values()]
    .filter((a) => a.contentType?.startsWith('image/'))
    .map((a) => ({
      id: a.url,
      url: a.url,
      size: a.size,
      ...(a.contentType && { mimeType: a.contentType }),
      ...(a.width !== null && { width: a.width }),
      ...(a.height !== null && { height: a.height }),
    }));
  const repliedTo = message.reference?.messageId;
  return {
    id: message.id,
    chat: toChat(adapter, message.channel),
    sender: toUser(message.author),
    text: message.content,
    mentionsBot: message.mentions.users.has(self.id),
    images,
    date: message.createdTimestamp,
    ...(repliedTo && {
      replyTo: {
        messageId: repliedTo,
        fromBot: message.mentions.repliedUser?.id === self.id,
        ...(message.mentions.repliedUser && { senderId: message.mentions.repliedUser.id }),
      },
    }),
  };
}

/** The parts of a slash-command interaction that matter here. */
export interface CommandInteractionLike {
  readonly id: string;
  readonly commandName: string;
  readonly createdTimestamp: number;
  readonly user: UserLike;
  readonly channel: ChannelLike | null;
  readonly channelId: string;
  readonly options: {
    readonly data: readonly { readonly name: string; readonly value?: string | number | boolean }[];
  };
}

/** A slash command as an incoming message whose text is the command line: `/draw a red fox`. */
export function normalizeCommand(adapter: string, interaction: CommandInteractionLike): IncomingMessage {
  const args = interaction.options.data.map((option) => String(option.value ?? '')).filter(Boolean);
  const channel: ChannelLike = interaction.channel ?? {
    id: interaction.channelId,
    type: 0,
    isThread: () => false,
    isDMBased: () => false,
  };
  return {
    id: interaction.id,
    chat: toChat(adapter, channel),
    sender: toUser(interaction.user),
    text: [`/${interaction.commandName}`, ...args].join(' '),
    mentionsBot: false,
    images: [],
    date: interaction.createdTimestamp,
    // Replies go through the interaction's webhook, not as replies to a message.
    replyHandle: interactionHandle(interaction.id),
  };
}

const interactionPrefix = 'interaction:';

/** The reply handle of a slash command: replies to it go through its interaction. */
export function interactionHandle(interactionId: string): string {
  return `${interactionPrefix}${interactionId}`;
}

/** What a reply handle names: a slash command's interaction, or a message to reply to. */
export function readHandle(handle: string | undefined): { interaction?: string; message?: string } {
  if (handle === undefined) return {};
  return handle.startsWith(interactionPrefix)
    ? { interaction: handle.slice(interactionPrefix.length) }
    : { message: handle };
}

/** A press of one of our buttons. */
export function normalizePress(
  adapter: string,
  interaction: {
    readonly id: string;
    readonly customId: string;
    readonly user: UserLike;
    readonly channel: ChannelLike | null;
    readonly message: { readonly id: string };
  },
): ButtonPress | undefined {
  if (!interaction.channel) return undefined;
  return {
    id: interaction.id,
    chat: toChat(adapter, interaction.channel),
    user: toUser(interaction.user),
    messageId: interaction.message.id,
    action: interaction.customId,
  };
}

/** Buttons as message components (action rows of up to 5 buttons). An empty list removes them. */
export function components(rows: readonly (readonly Button[])[]) {
  return rows
    .filter((row) => row.length > 0)
    .map((row) => ({
      type: 1,
      components: row.slice(0, 5).map((button) => ({
        type: 2,
        style: button.style === 'danger' ? 4 : 1,
        label: button.label.slice(0, 80),
        custom_id: button.action.slice(0, 100),
      })),
    }));
}

/** A plugin command as a Discord application command. */
export function applicationCommand(spec: CommandSpec) {
  const description =
    (typeof spec.description === 'string'
      ? spec.description
      : (spec.description.en ?? Object.values(spec.description)[0] ?? spec.name)
    ).slice(0, 100) || spec.name;
  const options =
    spec.options?.map((option) => ({
      type: 3,
      name: option.name,
      description: option.description.slice(0, 100) || option.name,
      required: option.required ?? false,
    })) ??
    (spec.usage ? [{ type: 3, name: 'text', description: spec.usage.slice(0, 100), required: false }] : []);
  return { name: spec.name, description, type: 1, options };
}

/** True when the commands Discord has are the ones we want (names, descriptions, options). */
export function sameCommands(
  existing: readonly unknown[],
  wanted: readonly ReturnType<typeof applicationCommand>[],
): boolean {
  const shape = (command: unknown) => {
    const c = command as {
      name: string;
      description: string;
      options?: { name: string; description: string; type: number; required?: boolean }[];
    };
    return JSON.stringify([
      c.name,
      c.description,
      (c.options ?? []).map((o) => [o.name, o.description, o.type, o.required ?? false]),
    ]);
  };
  const have = new Set(existing.map(shape));
  return existing.length === wanted.length && wanted.every((command) => have.has(shape(command)));
}
