import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createConsoleAdapter } from '../../adapters/console/index.ts';
import { adapterContract } from './contract.ts';

adapterContract(
  'console',
  async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let printed = '';
    output.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
    });
    const imageDir = mkdtempSync(join(tmpdir(), 'chorus-contract-'));
    const adapter = createConsoleAdapter({ input, output, imageDir, tty: false });
    return {
      adapter,
      userSays: (text) => {
        if (!input.writableEnded) input.write(`${text}\n`);
      },
      // A terminal cannot take back a line: an edit prints the new text below the old one.
      botTexts: async () => printed.split('\n').filter(Boolean),
      botImages: async () => readdirSync(imageDir).length,
      close: async () => {
        input.end();
      },
    };
  },
  { buttons: false },
);
