/**
 * `npm run bench`: runs every benchmark and prints one table. Figures go in the README.
 * `npm run bench -- core tg` runs only the sections named.
 */
import { benchAsk } from './ask.ts';
import { benchBudgets } from './budgets.ts';
import { benchCore, type Row } from './core.ts';
import { benchDraw } from './draw.ts';
import { benchObservability } from './observability.ts';
import { benchScale } from './scale.ts';
import { benchTelegram } from './telegram/index.ts';
import { benchWeb } from './web.ts';

const sections: [string, () => Promise<Row[]>][] = [
  ['core', benchCore],
  ['obs', benchObservability],
  ['draw', benchDraw],
  ['ask', benchAsk],
  ['budget', benchBudgets],
  ['tg', benchTelegram],
  ['redis', benchScale],
  ['web', benchWeb],
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !sections.some(([section]) => section === name));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown section: ${unknown.join(', ')} (sections: ${sections.map(([s]) => s).join(', ')})\n`,
  );
  process.exit(2);
}
const rows: (Row & { section: string })[] = [];
for (const [section, run] of sections) {
  if (wanted.length > 0 && !wanted.includes(section)) continue;
  for (const row of await run()) rows.push({ section, ...row });
}
const width = Math.max(...rows.map((r) => r.name.length));
const valueWidth = Math.max(...rows.map((r) => r.value.length));
process.stdout.write(`Node ${process.version}, ${process.platform}/${process.arch}\n\n`);
for (const row of rows) {
  process.stdout.write(
    `${row.section.padEnd(6)} ${row.name.padEnd(width)}  ${row.value.padStart(valueWidth)}${row.note ? `  (${row.note})` : ''}\n`,
  );
}
