/**
 * The `draw` plugin: one prompt to every configured image backend at once. Each backend's images
 * go out as one album the moment that backend finishes, while a status message tracks the rest
 * and always ends in a final state. `/cancel` (or the Cancel button) aborts the backends' HTTP
 * requests. Each backend has a concurrency limit shared by all users, and waiting users see
 * their place in line.
 */
import {
  asCompleted,
  BackendError,
  ByteBudget,
  type Context,
  createLimiter,
  createTurns,
  definePlugin,
  isCancellation,
  type Limiter,
  TimeoutError,
  withTimeout,
} from 'chorus-bot';
import { createImageBackend, type Image, type ImageBackend } from './backends.ts';
import { drawConfig } from './config.ts';
import { type DemoImageServer, startDemoImageServer } from './demo.ts';
import { strings } from './strings.ts';

type BackendState =
  | { readonly kind: 'waiting' }
  | { readonly kind: 'queued'; readonly ahead: number }
  | { readonly kind: 'running' }
  | { readonly kind: 'done'; readonly images: number; readonly seconds: number }
  | { readonly kind: 'failed'; readonly reason: string };

/** A short reason for a chat; the details go to the log. */
function shortReason(ctx: Context, error: unknown): string {
  if (error instanceof TimeoutError || (error instanceof BackendError && error.kind === 'timeout'))
    return ctx.t('draw.timedOut');
  if (error instanceof BackendError) {
    if (error.kind === 'status') return ctx.t('draw.refused', { status: error.status ?? '?' });
    if (error.kind === 'invalid') return ctx.t('draw.invalid');
    if (error.kind === 'blocked') return ctx.t('draw.blocked');
    return ctx.t('draw.unreachable');
  }
  return ctx.t('draw.error');
}

/** The `draw` plugin. */
export const plugin = definePlugin({
  name: 'draw',
  config: drawConfig,
  async setup(ctx, config) {
    ctx.strings(strings);
    let demo: DemoImageServer | undefined;
    if (config.backends.some((backend) => backend.type === 'demo' && backend.enabled)) {
      demo = await startDemoImageServer();
      ctx.onDispose(() => demo?.close());
      ctx.log.info('demo image backend running (pictures are drawn locally, labelled DEMO)', {
        url: demo.url,
      });
    }
    const backends: { backend: ImageBackend; limiter: Limiter }[] = config.backends
      .filter((backend) => backend.enabled)
      .map((backendConfig) => ({
        backend: createImageBackend(backendConfig, {
          http: ctx.http,
          maxImageBytes: config.maxImageBytes,
          maxImages: config.maxImages,
          demoUrl: demo?.url,
        }),
        limiter: createLimiter(backendConfig.concurrency, {
          slots: ctx.slots,
          key: `backend:${backendConfig.name}`,
        }),
      }));
    for (const backend of config.backends) ctx.secret(backend.apiKey, ...Object.values(backend.headers));
    const turns = createTurns({
      perUser: config.maxPerUser,
      maxQueued: config.maxQueuedPerUser,
      slots: ctx.slots,
    });

    ctx.command(
      {
        name: 'draw',
        description: { en: 'Draw a picture with every image backend', 'zh-CN': '用所有图像后端画图' },
        usage: '<prompt>',
        keywords: config.keywords,
        options: [{ name: 'prompt', description: 'What to draw', required: true }],
      },
      async (c) => {
        const prompt = c.command?.args.trim() ?? '';
        if (!prompt) {
          await c.reply(c.t('draw.usage'));
          return;
        }
        let leave: (() => void) | undefined;
        if (config.whenBusy === 'refuse') {
          leave = await turns.tryTake(c);
          if (!leave) {
            await c.reply(c.t('draw.busy'));
            return;
          }
        } else {
          leave = await turns.take(c, {
            waiting: (count) => c.t('draw.waiting', { count }),
            started: c.t('draw.waitingStarted'),
            cancelled: c.t('draw.cancelled'),
            full: c.t('draw.queueFull', { max: config.maxQueuedPerUser }),
            buttons: [[ctx.cancelButton(c.t('button.cancel'))]],
          });
          if (!leave) return;
        }
        try {
          const status = await c.status(c.t('draw.start', { count: backends.length }), {
            buttons: [[ctx.cancelButton(c.t('button.cancel'))]],
          });
          await drawAll(c, prompt, status, backends);
        } finally {
          leave();
        }
      },
    );

    async function drawAll(
      c: Context,
      prompt: string,
      status: Awaited<ReturnType<Context['status']>>,
      list: typeof backends,
    ): Promise<void> {
      const budget = new ByteBudget(config.maxDrawBytes);
      const states = new Map<string, BackendState>(
        list.map(({ backend }) => [backend.name, { kind: 'waiting' }]),
      );
      const render = (phase: 'progress' | 'finished' | 'cancelled') => {
        const values = [...states.values()];
        const settled = values.filter((s) => s.kind === 'done' || s.kind === 'failed').length;
        const delivered = values.filter((s) => s.kind === 'done').length;
        const head =
          phase === 'progress'
            ? c.t('draw.progress', { done: settled, total: list.length })
            : c.t(phase === 'finished' ? 'draw.finished' : 'draw.cancelledHead', {
                done: delivered,
                total: list.length,
              });
        const lines = [...states].map(([name, state]) => {
          switch (state.kind) {
            case 'waiting':
              return `… ${name}`;
            case 'queued':
              return `… ${c.t('draw.queued', { name, ahead: state.ahead })}`;
            case 'running':
              return `… ${c.t('draw.running', { name })}`;
            case 'done':
              return `✓ ${c.t('draw.done', { name, images: state.images, seconds: state.seconds.toFixed(1) })}`;
            default:
              return `✗ ${name}: ${state.reason}`;
          }
        });
        return [head, ...lines].join('\n');
      };
      const set = (name: string, state: BackendState) => {
        states.set(name, state);
        status.update(render('progress'));
      };

      const tasks = new Map(
        list.map(({ backend, limiter }) => [
          backend.name,
          (signal: AbortSignal) =>
            limiter.run(
              async (slotSignal) => {
                set(backend.name, { kind: 'running' });
                const started = c.clock.now();
                const images = await withTimeout(
                  (s) => backend.generate(prompt, s, budget),
                  backend.timeoutMs,
                  c.clock,
                )(slotSignal);
                return { images, seconds: (c.clock.now() - started) / 1000 };
              },
              { signal, onQueued: (ahead) => set(backend.name, { kind: 'queued', ahead }) },
            ),
        ]),
      );

      try {
        for await (const result of asCompleted(tasks, { signal: c.signal, clock: c.clock })) {
          if (result.status === 'fulfilled') {
            const { images, seconds } = result.value;
            // The status learns first, so its next edit (which the outbox sends after the album)
            // is never older than the albums already sent.
            set(result.key, { kind: 'done', images: images.length, seconds });
            try {
              await sendAlbum(c, result.key, images, seconds);
            } catch (error) {
              // The platform refused this album (too large, gone, unreachable): a note in the
              // status, and the other backends carry on.
              if (isCancellation(error) || c.signal.aborted) throw error;
              c.log.warn('album not sent', { backend: result.key, error });
              set(result.key, { kind: 'failed', reason: c.t('draw.notSent') });
            }
          } else {
            c.log.warn('backend failed', { backend: result.key, error: result.reason });
            set(result.key, { kind: 'failed', reason: shortReason(c, result.reason) });
          }
        }
      } catch (error) {
        if (isCancellation(error) || c.signal.aborted) {
          for (const [name, state] of states) {
            if (state.kind !== 'done' && state.kind !== 'failed')
              states.set(name, { kind: 'failed', reason: c.t('draw.cancelled') });
          }
          await status.finish(render('cancelled'));
        }
        throw error;
      }
      await status.finish(render('finished'));
    }

    async function sendAlbum(c: Context, backend: string, images: Image[], seconds: number): Promise<void> {
      const caption = c.t('draw.caption', { name: backend, seconds: seconds.toFixed(1) });
      await c.replyImages(
        images.map((image, i) => ({
          data: image.data,
          mimeType: image.mimeType,
          filename: `${backend}-${i + 1}.${image.mimeType.split('/')[1]}`,
        })),
        { caption },
      );
    }
  },
});
