/**
 * Chorus: one bot on Discord, Telegram and the console. This is the public API, grouped by who
 * uses it. The test kit lives in `chorus/testing`.
 */

// For adapter authors
export type { Adapter, AdapterHost, AdapterLimits, EditOptions, RateLimit, RateLimits } from './adapter.ts';
export type { BotOptions, PluginEntry } from './bot.ts';
// For running a bot
export { Bot, cancelAction, createBot } from './bot.ts';
export type { ChorusEvents, JobEvent, Listener } from './bus.ts';
export { EventBus } from './bus.ts';
export type { Clock, TimerHandle } from './clock.ts';
export { sleep, systemClock } from './clock.ts';
export type { CommandOption, CommandSpec, ParsedCommand } from './commands.ts';
export { matchKeyword, parseCommand } from './commands.ts';
export type {
  ConcurrencyOptions,
  KeyedLimiter,
  Limiter,
  LimiterRunOptions,
  ReturnWhen,
  Settled,
  StreamEvent,
  StreamSource,
  Task,
  Tasks,
  WaitResult,
} from './concurrency.ts';
export {
  asCompleted,
  createKeyedLimiter,
  createLimiter,
  gather,
  mergeStreams,
  wait,
  withTimeout,
} from './concurrency.ts';
export type { ChorusConfig, LoadConfigOptions, LoadedConfig } from './config.ts';
export { configSchema, loadConfig, parseConfig } from './config.ts';
export type { Context, StatusMessage } from './context.ts';
// Errors
export {
  AdapterError,
  BackendError,
  CancelledError,
  ChorusError,
  ConfigError,
  isCancellation,
  RateLimitError,
  TimeoutError,
} from './errors.ts';
export type { HttpOptions, HttpRequest, HttpResponse } from './http.ts';
export { HttpClient, readBytes, readJson, readNdjson, readSse } from './http.ts';
export type { Locale, Strings } from './i18n.ts';
export { Translator } from './i18n.ts';
export type { LogFields, Logger, LoggerOptions, LogLevel } from './logger.ts';
export { createLogger, Redactor, silentLogger } from './logger.ts';
export type {
  BotIdentity,
  Button,
  ButtonPress,
  ChatAddress,
  ChatKind,
  ImageRef,
  IncomingMessage,
  OutgoingImage,
  OutgoingMessage,
  Platform,
  ReplyRef,
  SentMessage,
  TextFormat,
  UserRef,
} from './message.ts';
export { chatKey, toOutgoing } from './message.ts';
export type { OutboxOptions, OutboxStats } from './outbox.ts';
export { Outbox } from './outbox.ts';
export type {
  ButtonHandler,
  CommandHandler,
  ConfigSchema,
  MessageMatcher,
  Plugin,
  PluginContext,
} from './plugin.ts';
// For plugin authors
export { definePlugin } from './plugin.ts';
export type { StreamOptions, StreamResult } from './stream.ts';
export { TextStream } from './stream.ts';
export { splitText } from './text.ts';
