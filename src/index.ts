/**
 * Chorus: one bot on Discord, Telegram and the console. This is the public API, grouped by who
 * uses it. The test kit lives in `chorus-bot/testing`.
 */

// --- For plugin authors ------------------------------------------------------------------------
export { definePlugin } from './plugin.ts';
export type {
  ButtonHandler,
  CommandHandler,
  ConfigSchema,
  MessageMatcher,
  Plugin,
  PluginContext,
} from './plugin.ts';
export type { Context, StatusMessage } from './context.ts';
export type {
  Json,
  Schedule,
  ScheduledJob,
  ScheduledRun,
  ScheduleFilter,
  ScheduleOptions,
  TaskContext,
  TaskHandler,
  TaskOptions,
} from './schedule-jobs.ts';
export { TextStream } from './stream.ts';
export type { StreamOptions, StreamResult } from './stream.ts';
export type { CommandOption, CommandSpec, ParsedCommand } from './commands.ts';
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
export type { ChorusEvents, JobEvent, Listener } from './bus.ts';
export { asCompleted, gather, wait, withTimeout } from './concurrency.ts';
export type { ConcurrencyOptions, ReturnWhen, Settled, Task, Tasks, WaitResult } from './concurrency.ts';
export { mergeStreams } from './streams.ts';
export type { StreamEvent, StreamSource, Streams } from './streams.ts';
export { createKeyedLimiter, createLimiter } from './limit.ts';
export type { KeyedLimiter, Limiter, LimiterOptions, LimiterRunOptions } from './limit.ts';
export type { ReleaseSlot, SlotRequest, Slots } from './slots.ts';
export { createTurns } from './turns.ts';
export type { Turns, TurnsOptions, TurnTexts } from './turns.ts';
export { ByteBudget, maxLineChars, readBytes, readJson, readNdjson, readSse } from './http.ts';
export type { Body, Http, HttpOptions, HttpRequest, HttpResponse } from './http.ts';
export { HttpClient } from './runtime/http.ts';
export { isPublicAddress } from './runtime/net-guard.ts';
export { splitText, wellFormed } from './text.ts';
export type { Locale, Strings } from './i18n.ts';
export { sleep, systemClock } from './clock.ts';
export type { Clock, TimerHandle } from './clock.ts';
export { httpUrl, uniqueNames } from './schemas.ts';
export type { Route, RouteStep } from './router.ts';

// --- Errors, for everyone ----------------------------------------------------------------------
export {
  AdapterError,
  BackendError,
  type CancelledBy,
  CancelledError,
  cancelledBy,
  ChorusError,
  ConfigError,
  isCancellation,
  RateLimitError,
  TimeoutError,
} from './errors.ts';

// --- For adapter authors -----------------------------------------------------------------------
export { defineAdapter } from './adapter.ts';
export type {
  Adapter,
  AdapterCreateOptions,
  AdapterDefinition,
  AdapterHost,
  AdapterLimits,
  EditOptions,
  RateLimit,
  RateLimits,
  ReceiveOptions,
} from './adapter.ts';
export type { HttpMounts, MountOptions, RequestHandler, Unmount } from './http-routes.ts';
export { chatKey, toOutgoing } from './message.ts';
export { matchKeyword, parseCommand } from './commands.ts';

// --- For running a bot -------------------------------------------------------------------------
export { Bot, cancelAction, createBot } from './bot.ts';
export type { AdapterState, BotOptions, PluginEntry, Readiness } from './bot.ts';
export { EventBus } from './bus.ts';
export { Outbox } from './outbox.ts';
export { MemoryBudget } from './budget.ts';
export type { Budget, BudgetRule } from './budget.ts';
export { MemoryJobs } from './jobs.ts';
export type { JobFilter, JobRecord, Jobs } from './jobs.ts';
export { MemorySlots, namespacedSlots } from './slots.ts';
export type { WorkHandler, WorkQueue } from './work.ts';
export { RedisBudget } from './runtime/redis/budget.ts';
export { connectRedis } from './runtime/redis/connection.ts';
export { openRedisJobs } from './runtime/redis/jobs.ts';
export type { RedisJobs } from './runtime/redis/jobs.ts';
export { RedisWorkQueue } from './runtime/redis/queue.ts';
export { RedisSlots } from './runtime/redis/slots.ts';
export type { RedisSlotsOptions } from './runtime/redis/slots.ts';
export { RedisStore } from './runtime/redis/store.ts';
export type { OutboxOptions, OutboxStats } from './outbox.ts';
export { configSchema, loadConfig, parseConfig } from './runtime/config.ts';
export type { ChorusConfig, LoadConfigOptions, LoadedConfig } from './runtime/config.ts';
export { createLogger, Redactor, silentLogger } from './logger.ts';
export type { LogFields, LogFormat, Logger, LoggerOptions, LogLevel } from './logger.ts';
export { durationBounds, HistogramCell, Metrics } from './metrics.ts';
export { createRegistry, mountObservability } from './runtime/observability.ts';
export type { ObservabilityOptions, ObservedBot } from './runtime/observability.ts';
export { tracerName } from './tracing.ts';
export { Translator } from './i18n.ts';
export { checkKey, checkTtl, MemoryStore, namespacedStore } from './store.ts';
export type { Store, StoreEntry, StoreLock, StoreOptions } from './store.ts';
export { openSqliteStore, SqliteStore } from './runtime/sqlite-store.ts';
export type { SqliteStoreOptions } from './runtime/sqlite-store.ts';
export { BodyTooLargeError, HttpServer } from './runtime/http-server.ts';
export type { HttpServerOptions } from './runtime/http-server.ts';
export { Scheduler } from './schedule.ts';
export { nextCronRun } from './schedule-jobs.ts';
export type { RunScheduled, SchedulerOptions } from './schedule.ts';
