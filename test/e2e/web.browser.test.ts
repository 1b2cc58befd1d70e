/**
 * The chat page in a real browser: Debian's chromium, driven by playwright-core (which downloads
 * nothing), against `npm start -- --config FILE` with the web adapter on a port of its own, image
 * backends of 100, 600 and 1500 ms (and one that fails) and a fake chat model.
 *
 * `UPDATE_SCREENSHOT=1 npx vitest run test/e2e/web.browser.test.ts` writes docs/web.png, the
 * README's picture; otherwise the screenshot goes to a temporary folder.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backends,
  llmApiKey,
  type RunningChorus,
  startBackends,
  startChorus,
  workDir,
} from './harness.ts';

const token = 'page-test-token-0123456789';
const root = resolve(import.meta.dirname, '../..');

let backends: Backends;
let bot: RunningChorus;
let browser: Browser;
let base: string;
let dir: string;
let releaseStream: () => void;

/** Records, in the page, when each image enters the DOM (epoch ms) and the caption of its message. */
const recordImages = `
  window.__images = [];
  new MutationObserver((records) => {
    const at = performance.timeOrigin + performance.now();
    for (const record of records)
      for (const node of record.addedNodes) {
        if (!(node instanceof Element)) continue;
        for (const image of node.matches('img') ? [node] : node.querySelectorAll('img'))
          window.__images.push({ caption: image.closest('article')?.querySelector('.text')?.textContent ?? '', at });
      }
  }).observe(document, { childList: true, subtree: true });
`;

beforeAll(async () => {
  // These tests never skip: without the browser they drive, they fail saying how to install it.
  if (!existsSync('/usr/bin/chromium'))
    throw new Error('chromium is not installed (apt-get install -y chromium; .ci/run does it)');
  backends = await startBackends();
  const { images, llm } = backends;
  images.set('quick', 'picture', 100);
  images.set('steady', 'picture', 600);
  images.set('slow', 'picture', 1500);
  const held = new Promise((resolve) => {
    releaseStream = () => resolve(undefined);
  });
  llm.script('gpt-test', {
    pieces: (messages) => {
      const question = messages.at(-1)?.content ?? '';
      if (question.includes('stream please'))
        return ['Streaming ', 'starts ', 'here. ', 'Then it ends in ', '**bold at the end**.'];
      if (question.includes('inject'))
        return [
          'Here is code: <script>window.__pwned = 1</script> and <img src=x onerror="window.__pwned = 2"> done.',
        ];
      return [`You said: ${question}.`];
    },
    hold: { piece: 3, until: held },
  });
  dir = workDir();
  const config = [
    'adapters:',
    '  web: { port: 0, token: ${WEB_TOKEN} }',
    ...backends.plugins(dir, 2),
    'state:',
    `  path: ${dir}/state.sqlite`,
    '',
  ].join('\n');
  bot = startChorus(dir, config, { env: { WEB_TOKEN: token, OPENAI_API_KEY: llmApiKey } });
  const launching = chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  await bot.waitFor(/web chat page ready url=\S+/);
  base = bot.output().stderr.match(/web chat page ready url=(http:\/\/\S+)\//)![1]!;
  browser = await launching;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await bot?.stop('SIGKILL');
  await backends?.close();
});

/** A visitor: a browser context of its own, on the page after giving the token once. */
async function visit(
  viewport = { width: 720, height: 1100 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  await context.addInitScript({ content: recordImages });
  const page = await context.newPage();
  await page.goto(`${base}/?token=${token}`);
  expect(new URL(page.url()).search).toBe('');
  await page.locator('#state', { hasText: 'connected' }).waitFor();
  return { context, page };
}

/** Types a line and sends it with Enter, as a keyboard user does. */
async function say(page: Page, text: string): Promise<void> {
  await page.locator('#text').focus();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

const finishedAt = (name: string, prompt: string) => backends.images.finishedAt.get(`${name}|${prompt}`)!;

describe('the chat page in chromium', () => {
  let a: { context: BrowserContext; page: Page };

  it('shows the three albums of /draw in the order their backends finish, each as it arrives', async () => {
    a = await visit();
    const { page } = a;
    await say(page, '/draw a red fox');
    const status = page.locator('article.bot').first();
    await status
      .locator('.text', { hasText: /^Finished: 3\/4 backends delivered/ })
      .waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('.album').count()).toBe(3);
    const captions = await page.locator('article.bot:has(.album) .text').allTextContents();
    expect(captions.map((caption) => caption.split(' ·')[0])).toEqual(['quick', 'steady', 'slow']);
    // Every picture was served as an image the browser could draw.
    const drawn = await page
      .locator('.album img')
      .evaluateAll((images) =>
        images.map((image) => (image as unknown as { naturalWidth: number }).naturalWidth),
      );
    expect(drawn).toEqual([192, 192, 192, 192, 192, 192]);
    // When each album entered the page: in completion order, and each before the next backend
    // had even finished (so not all at once at the end).
    const seen = (await page.evaluate('window.__images')) as { caption: string; at: number }[];
    const firstSeen = (name: string) => seen.find((image) => image.caption.startsWith(`${name} ·`))!.at;
    expect(firstSeen('quick')).toBeLessThan(firstSeen('steady'));
    expect(firstSeen('steady')).toBeLessThan(firstSeen('slow'));
    expect(firstSeen('quick')).toBeLessThan(finishedAt('steady', 'a red fox'));
    expect(firstSeen('steady')).toBeLessThan(finishedAt('slow', 'a red fox'));
    expect(seen).toHaveLength(6);
  });

  it('shows a streamed answer growing before the model has finished, and complete (as Markdown) after', async () => {
    const { page } = a;
    await say(page, 'stream please');
    const answer = page.locator('article.bot', { hasText: 'Streaming starts here.' });
    await answer.waitFor();
    // The model is held after its third piece: what shows now was shown mid-stream.
    expect(await answer.getAttribute('data-partial')).toBe('');
    expect(await answer.textContent()).not.toContain('bold at the end');
    releaseStream();
    await answer.locator('strong', { hasText: 'bold at the end' }).waitFor();
    expect(await answer.getAttribute('data-partial')).toBeNull();
    expect(await answer.locator('.text').textContent()).toBe(
      'Streaming starts here. Then it ends in bold at the end.',
    );
  });

  it('shows a <script> in a model’s answer as text, and runs nothing of it', async () => {
    const { page } = a;
    await say(page, 'inject please');
    const answer = page.locator('article.bot', { hasText: 'Here is code:' });
    await answer.locator('.text:not(.plain)').waitFor();
    expect(await answer.locator('.text').textContent()).toBe(
      'Here is code: <script>window.__pwned = 1</script> and <img src=x onerror="window.__pwned = 2"> done.',
    );
    expect(await page.locator('#log script, #log img[src="x"]').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    const shot = process.env.UPDATE_SCREENSHOT ? join(root, 'docs/web.png') : join(dir, 'web.png');
    await page.screenshot({ path: shot, fullPage: true });
  });

  it('stops a draw with its Cancel button', async () => {
    const { page } = a;
    backends.images.set('slow', 'hang');
    try {
      await say(page, '/draw a slow snail');
      const status = page.locator('article.bot', { hasText: /^(Drawing|Cancelled)/ }).last();
      await page
        .locator('article.bot .text', { hasText: /^quick · / })
        .nth(1)
        .waitFor();
      // From the keyboard: the button takes focus and Enter presses it.
      await status.getByRole('button', { name: 'Cancel' }).focus();
      await page.keyboard.press('Enter');
      await status.locator('.text', { hasText: /^Cancelled: / }).waitFor();
      expect(await status.locator('.text').textContent()).toMatch(/✗ slow: cancelled/);
      expect(await status.getByRole('button').count()).toBe(0);
      expect(await page.locator('article.bot .text', { hasText: /^slow · / }).count()).toBe(1);
    } finally {
      backends.images.set('slow', 'picture', 1500);
    }
  });

  it('keeps two browsers’ chats apart (one on a phone’s screen), across a reload too', async () => {
    const b = await visit({ width: 375, height: 700 }); // a phone
    try {
      await say(b.page, 'hello from the second browser');
      await b.page.locator('article.bot', { hasText: 'You said: hello from the second browser.' }).waitFor();
      await say(b.page, '/draw a small cat');
      await b.page.locator('article.bot .text', { hasText: /^Finished: / }).waitFor({ timeout: 15_000 });
      expect(await b.page.locator('#log').textContent()).not.toContain('red fox');
      // Readable on a phone: nothing wider than the screen, albums included.
      expect(await b.page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
      expect(await b.page.locator('.album').count()).toBe(3);
      await a.page.reload();
      await a.page.locator('article.bot', { hasText: 'Streaming starts here.' }).waitFor();
      expect(await a.page.locator('.album').count()).toBeGreaterThanOrEqual(4);
      expect(await a.page.locator('#log').textContent()).not.toContain('second browser');
      expect(await a.page.locator('#log').textContent()).not.toContain('small cat');
      const chatOf = async (context: BrowserContext) =>
        (await context.cookies()).find((cookie) => cookie.name === 'chorus_chat');
      const [chatA, chatB] = [await chatOf(a.context), await chatOf(b.context)];
      expect(chatA).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      expect(chatA!.value).not.toBe(chatB!.value);
    } finally {
      await b.context.close();
      await a.context.close();
    }
  });
});
