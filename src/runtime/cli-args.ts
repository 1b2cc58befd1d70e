/**
 * The `chorus` command line: its usage text and the parsing of the arguments into the command to
 * run (`start` with its options, `init DIR`, or the help). Reads nothing but the arguments.
 */

/** The usage text `chorus --help` prints, and a wrong command line prints after its error. */
export const usage = `usage: chorus [start] [--config FILE] [--check] [--watch]
       chorus init DIR
       chorus --help

commands:
  start           run the bot (the default)
  init DIR        write a new bot project in DIR: package.json, chorus.yaml, an example
                  plugin and its test, tsconfig.json
options of start:
  --config FILE   the config file (default: config/chorus.yaml, or $CHORUS_CONFIG;
                  without either, a built-in offline default on the console)
  --check         check the config (and find its adapters and plugins), then exit
  --watch         reload a plugin when its files under plugins/ or its config section change
  --help          this text
`;

/** A command line that cannot be run: the usage is printed and the exit status is 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** What `chorus start` was asked to do. */
export interface StartArgs {
  config?: string;
  check: boolean;
  watch: boolean;
}

/** The command a command line asks for. */
export type Command =
  | { readonly name: 'help' }
  | { readonly name: 'init'; readonly dir: string }
  | { readonly name: 'start'; readonly args: StartArgs };

/** Parses the arguments after `chorus`; throws a {@link UsageError} for a command line that cannot run. */
export function parseArgs(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === 'init') {
    if (rest.includes('--help') || rest.includes('-h')) return { name: 'help' };
    const [dir, ...extra] = rest;
    if (!dir || dir.startsWith('-')) throw new UsageError('init needs the folder of the new project');
    if (extra.length > 0) throw new UsageError(`unknown argument: ${extra[0]}`);
    return { name: 'init', dir };
  }
  if (first === 'help') return { name: 'help' };
  const options = first === 'start' ? rest : argv;
  if (first !== undefined && first !== 'start' && !first.startsWith('-')) {
    throw new UsageError(`unknown command: ${first}`);
  }
  const args: StartArgs = { check: false, watch: false };
  for (let i = 0; i < options.length; i++) {
    const arg = options[i]!;
    if (arg === '--help' || arg === '-h') return { name: 'help' };
    if (arg === '--check') args.check = true;
    else if (arg === '--watch') args.watch = true;
    else if (arg === '--config') {
      const file = options[++i];
      if (!file) throw new UsageError('--config needs a file name');
      args.config = file;
    } else if (arg.startsWith('--config=')) args.config = arg.slice('--config='.length);
    else throw new UsageError(`unknown argument: ${arg}`);
  }
  return { name: 'start', args };
}
