/** The `plugins.draw` config section. */
import { httpUrl, uniqueNames } from 'chorus-bot';
import { z } from 'zod';

const common = {
  /** Shown in captions and status lines. */
  name: z.string().regex(/^[\w.-]{1,32}$/, 'letters, digits, _ . - (at most 32)'),
  /** Time for one backend to answer, queue time not counted. */
  timeoutMs: z.number().int().positive().default(120_000),
  /** Requests this backend runs at once, shared by all users. */
  concurrency: z.number().int().positive().default(2),
  headers: z.record(z.string(), z.string()).default({}),
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: z.string().optional(),
  /** A proxy for this backend only; default: `http.proxy`. */
  proxy: httpUrl.optional(),
  /**
   * Let image URLs in this backend's answers (and redirects) lead to private addresses: loopback,
   * the LAN, link-local. Its own configured origin is always allowed.
   */
  allowPrivateNetwork: z.boolean().default(false),
  enabled: z.boolean().default(true),
};

const template = z
  .string()
  .refine((url) => /^https?:\/\//.test(url), 'an http(s) URL, with {prompt} where the prompt goes');

/** One image backend. */
export const backendConfig = z.discriminatedUnion('type', [
  z.strictObject({
    ...common,
    type: z.literal('openai-images'),
    baseUrl: httpUrl.default('https://api.openai.com/v1'),
    model: z.string().default('gpt-image-1'),
    size: z.string().default('1024x1024'),
    n: z.number().int().min(1).max(10).default(1),
  }),
  z.strictObject({
    ...common,
    type: z.literal('http-json'),
    url: template,
    method: z.enum(['GET', 'POST']).default('GET'),
    /** JSON body for POST; `{prompt}` inside strings is replaced. */
    body: z.record(z.string(), z.unknown()).optional(),
    /** Where the image URLs are in the answer: `data[].url`, `images[]`, `output.url`. */
    imagePath: z.string().default('data[].url'),
  }),
  z.strictObject({
    ...common,
    type: z.literal('http-image'),
    url: template,
    method: z.enum(['GET', 'POST']).default('GET'),
    body: z.record(z.string(), z.unknown()).optional(),
  }),
  z.strictObject({
    ...common,
    type: z.literal('demo'),
    /** How long the demo backend takes. */
    latencyMs: z.number().int().nonnegative().default(1000),
    /** Share of requests that fail, 0 to 1. */
    failRate: z.number().min(0).max(1).default(0),
    n: z.number().int().min(1).max(12).default(1),
  }),
]);

/** A validated image backend. */
export type BackendConfig = z.output<typeof backendConfig>;

/** The `plugins.draw` section. */
export const drawConfig = z.strictObject({
  backends: z.array(backendConfig).min(1, 'at least one backend').superRefine(uniqueNames),
  /** Draws one user may have running at once. */
  maxPerUser: z.number().int().positive().default(1),
  /** Draws one user may have waiting; more are refused. */
  maxQueuedPerUser: z.number().int().nonnegative().default(3),
  /** What happens to a draw past `maxPerUser`: wait its turn, or be refused. */
  whenBusy: z.enum(['queue', 'refuse']).default('queue'),
  /** Largest image accepted from a backend. */
  maxImageBytes: z
    .number()
    .int()
    .positive()
    .default(20 * 1024 * 1024),
  /** Images taken from one backend's answer; the rest are not downloaded. */
  maxImages: z.number().int().min(1).max(100).default(10),
  /** Bytes of images one draw downloads from all its backends together. */
  maxDrawBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** Command keywords without a prefix. */
  keywords: z.array(z.string().min(1)).default(['画']),
});

/** A validated `plugins.draw` section. */
export type DrawConfig = z.output<typeof drawConfig>;
