/**
 * docs/api.md covers every export of `chorus-bot` and `chorus-bot/testing` with its signature and
 * an example, and every example type-checks against the API as it is now.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const doc = readFileSync(resolve(root, 'docs/api.md'), 'utf8');
const options: ts.CompilerOptions = {
  ...ts.convertCompilerOptionsFromJson(
    (ts.readConfigFile(resolve(root, 'tsconfig.json'), ts.sys.readFile).config as { compilerOptions: object })
      .compilerOptions,
    root,
  ).options,
  noUnusedLocals: false,
  // The prelude imports types and values alike by name.
  verbatimModuleSyntax: false,
};

/** The names a module exports, values and types alike. */
function exportsOf(program: ts.Program, file: string): string[] {
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(resolve(root, file))!)!;
  return checker.getExportsOfModule(module).map((symbol) => symbol.name);
}

/** Each `### \`name\`` section: its signature and example code blocks. */
const sections = new Map(
  [...doc.matchAll(/^### `(\w+)`\n([\s\S]*?)(?=^##|(?![\s\S]))/gm)].map(([, name, body]) => [
    name!,
    [...body!.matchAll(/```ts\n([\s\S]*?)```/g)].map((block) => block[1]!),
  ]),
);

// What the examples may take as given: a handler's context, a plugin's, a test kit, and a few
// values of the types the API works with.
const prelude = `
import * as chorus from 'chorus-bot';
import {
  ${[...sections.keys()].filter((name) => !['flush', 'createTestBot', 'FakeClock', 'Recorded', 'MockMessage', 'FailureRule', 'MockAdapterOptions', 'MockAdapter', 'TestMessageOptions', 'TestBotOptions', 'TestBot'].includes(name)).join(', ')}
} from 'chorus-bot';
import { flush, createTestBot, FakeClock, MockAdapter, type Recorded, type MockMessage, type FailureRule, type MockAdapterOptions, type TestMessageOptions, type TestBotOptions, type TestBot } from 'chorus-bot/testing';
import { z } from 'zod';
import { expect } from 'vitest';
void chorus;
declare const c: Context;
declare const ctx: PluginContext;
declare const kit: TestBot;
declare const plugin: Plugin<unknown>;
declare const help: Plugin<unknown>;
declare const plugins: PluginEntry[];
declare const adapters: Adapter[];
declare const adapter: Adapter;
declare const ircDefinition: AdapterDefinition<{ server: string }>;
declare const incoming: IncomingMessage;
declare const consoleAdapter: Adapter;
declare const log: Logger;
declare const clock: FakeClock;
declare const store: Store;
declare const outbox: Outbox;
declare const chat: ChatAddress;
declare const status: StatusMessage;
declare const config: ChorusConfig;
declare const pieces: AsyncIterable<string>;
declare const gptPieces: AsyncIterable<string>;
declare const llamaPieces: AsyncIterable<string>;
declare const streams: Record<string, TextStream>;
declare const tasks: ((signal: AbortSignal) => Promise<string>)[];
declare const results: Settled<number, string>[];
declare const result: Settled<number, string>;
declare const responses: HttpResponse[];
declare const images: Uint8Array[];
declare const pngBytes: Uint8Array;
declare const url: string;
declare const imageUrl: string;
declare const body: string;
declare const signal: AbortSignal;
declare const key: string;
declare const apiKey: string;
declare const path: string;
declare const prompt: string;
declare const longAnswer: string;
declare const untrustedText: string;
declare const error: unknown;
declare const option: CommandOption;
declare const handler: CommandHandler;
declare const answer: CommandHandler;
declare const digest: TaskHandler;
declare const limiter: Limiter;
declare const perUser: KeyedLimiter;
declare const turns: Turns;
declare const texts: TurnTexts;
declare const redactor: Redactor;
declare const run: RunScheduled;
declare const fast: Promise<string>;
declare const slow: Promise<string>;
declare const backends: { ask(prompt: string, signal: AbortSignal): Promise<string>; timeoutMs: number }[];
declare const options: { clock?: Clock };
declare type IrcConfig = { server: string };
declare class IrcAdapter implements Adapter {
  constructor(name: string, config: IrcConfig);
  name: string; platform: string; limits: AdapterLimits; commandPrefixes: string[];
  start(host: AdapterHost): Promise<BotIdentity>; stop(): Promise<void>;
  send(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage>;
  edit(chat: ChatAddress, id: string, message: OutgoingMessage, options: EditOptions): Promise<void>;
}
declare function work(signal?: AbortSignal): Promise<void>;
declare function ask(prompt: string, signal: AbortSignal): Promise<string>;
declare function askA(signal: AbortSignal): Promise<string>;
declare function askB(signal: AbortSignal): Promise<number>;
declare function askGithub(signal: AbortSignal): Promise<number>;
declare function askDiscord(signal: AbortSignal): Promise<number>;
declare function handle(event: unknown): void;
`;

/** Examples that declare something at the top level; the others run inside a function. */
const topLevel = /^(export |declare module |class )/;

function checkExamples(): string[] {
  const file = resolve(root, 'docs/api.examples.ts');
  const source =
    prelude +
    [...sections]
      .map(([name, blocks], index) => {
        const example = blocks[1] ?? '';
        return topLevel.test(example)
          ? `// ${name}\n${example}\n`
          : `// ${name}\nexport async function example${index}() {\n${example}\n}\n`;
      })
      .join('');
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (name) => name === file || fileExists(name);
  host.readFile = (name) => (name === file ? source : readFile(name));
  host.getSourceFile = (name, language, ...rest) =>
    name === file
      ? ts.createSourceFile(name, source, language, true)
      : getSourceFile(name, language, ...rest);
  const program = ts.createProgram([file], options, host);
  const lines = source.split('\n');
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (diagnostic.file?.fileName !== file) return message;
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    const owner = lines
      .slice(0, line + 1)
      .reverse()
      .find((text) => text.startsWith('// '));
    return `${owner ?? 'prelude'}: ${message} (in: ${lines[line]?.trim().slice(0, 160)})`;
  });
}

describe('docs/api.md', () => {
  it('has an entry with a signature and an example for every export of chorus-bot and chorus-bot/testing', () => {
    const program = ts.createProgram(
      [resolve(root, 'src/index.ts'), resolve(root, 'src/testing.ts')],
      options,
    );
    const exported = [...exportsOf(program, 'src/index.ts'), ...exportsOf(program, 'src/testing.ts')];
    expect(exported.length).toBeGreaterThan(100);
    expect(exported.filter((name) => !sections.has(name))).toEqual([]);
    expect([...sections.keys()].filter((name) => !exported.includes(name))).toEqual([]);
    for (const [name, blocks] of sections) {
      expect(blocks, name).toHaveLength(2);
      expect(blocks[0], name).toContain(name);
    }
  });

  it('has examples that type-check against the API', () => {
    expect(checkExamples()).toEqual([]);
  }, 60_000);
});
