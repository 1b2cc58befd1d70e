/**
 * Slash commands and buttons on Discord. A slash command is deferred at once (Discord wants an
 * answer within 3 s) and kept in the `Interactions` table, so the job answers through the deferred
 * reply and follow-ups; a button press is acknowledged and handed on; a slash command that got no
 * reply has its "thinking..." taken away; and the plugins' commands are registered, only when
 * they changed.
 */
import { type Interaction, type REST, Routes } from 'discord.js';
import type { AdapterHost } from '../../src/adapter.ts';
import type { CommandSpec } from '../../src/commands.ts';
import type { IncomingMessage } from '../../src/message.ts';
import type { Interactions } from './interactions.ts';
import {
  applicationCommand,
  normalizeCommand,
  normalizePress,
  readHandle,
  sameCommands,
} from './normalize.ts';
import { callDiscord } from './request.ts';

/** Options of {@link createSlashCommands}. */
export interface SlashCommandsOptions {
  /** The adapter's name, on the messages and presses it hands on. */
  readonly name: string;
  readonly rest: REST;
  /** Where the deferred slash commands are kept while they are answered. */
  readonly interactions: Interactions;
  /** Where commands are registered: `all` (global) or these guilds. */
  readonly commandGuilds: 'all' | readonly string[];
  /** The host and the bot's application id, known once the adapter has started. */
  readonly session: { readonly host: AdapterHost | undefined; readonly applicationId: string };
}

/** What the adapter does with slash commands and buttons. */
export interface SlashCommands {
  /** Answers an interaction the gateway let through: defers a slash command, acknowledges a button. */
  answer(interaction: Interaction): void;
  /** Takes away the "thinking..." of a slash command whose jobs ended without a reply (`settled`). */
  settled(message: IncomingMessage): void;
  /** Registers `commands` where the config says, wherever they differ from what Discord has. */
  register(commands: readonly CommandSpec[]): Promise<void>;
}

/** The slash commands and buttons of one Discord adapter. */
export function createSlashCommands(options: SlashCommandsOptions): SlashCommands {
  const { name, rest, interactions, session } = options;
  return {
    answer(interaction) {
      if (interaction.isChatInputCommand()) {
        // Defer within Discord's 3 seconds; the job answers through the deferred reply and follow-ups.
        const deferred = rest
          .post(Routes.interactionCallback(interaction.id, interaction.token), {
            body: { type: 5 },
            auth: false,
          })
          .then(() => {});
        interactions.add(interaction.id, interaction.token, deferred);
        deferred
          // Its replies go through the interaction's token, which only this process holds.
          .then(() => session.host?.receive(normalizeCommand(name, interaction), { local: true }))
          .catch((error: unknown) =>
            session.host?.log.error('handling a slash command failed', {
              command: interaction.commandName,
              error,
            }),
          );
      } else if (interaction.isButton()) {
        const press = normalizePress(name, interaction);
        rest
          .post(Routes.interactionCallback(interaction.id, interaction.token), {
            body: { type: 6 },
            auth: false,
          })
          .catch((error: unknown) => session.host?.log.debug('acknowledging a button failed', { error }));
        if (press)
          session.host
            ?.press(press)
            .catch((error: unknown) => session.host?.log.error('handling a button failed', { error }));
      }
    },

    settled(message) {
      // A slash command that got no reply would show "thinking..." for 15 minutes: take it away.
      const { interaction } = readHandle(message.replyHandle);
      const pending = interaction === undefined ? undefined : interactions.replyingTo(interaction);
      if (!pending || pending.originalUsed) return;
      void pending.deferred
        .then(() => {
          if (pending.originalUsed) return;
          pending.originalUsed = true;
          return rest.delete(Routes.webhookMessage(session.applicationId, pending.token, '@original'), {
            auth: false,
          });
        })
        .catch((error: unknown) =>
          session.host?.log.debug('removing an unanswered "thinking..." failed', { error }),
        );
    },

    async register(commands) {
      const wanted = commands.map(applicationCommand);
      const appId = session.applicationId;
      const routes =
        options.commandGuilds === 'all'
          ? [Routes.applicationCommands(appId)]
          : options.commandGuilds.map((guild) => Routes.applicationGuildCommands(appId, guild));
      for (const route of routes) {
        const existing = (await callDiscord(name, 'listCommands', () => rest.get(route))) as unknown[];
        if (sameCommands(existing, wanted)) continue;
        await callDiscord(name, 'registerCommands', () => rest.put(route, { body: wanted }));
        session.host?.log.info('registered slash commands', { count: wanted.length, route });
      }
    },
  };
}
