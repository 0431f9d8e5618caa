/** Entry point of the `edgefleet` command: dispatch, shared flags, exit codes, one-line errors. */
import { parseArgs } from 'node:util';
import { EDGEFLEET_VERSION, EdgefleetError } from '@edgefleet/protocol';
import { type Command, type CommandContext, UsageError } from './command.ts';
import { commands } from './commands/index.ts';

const sharedOptions = {
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function helpText(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'edgefleet: convert models, roll them out to device fleets, watch health and drift.',
    '',
    'Usage: edgefleet <command> [options]   (every command takes --json and --verbose)',
    '',
    ...lines,
    '',
    'Run `edgefleet <command> --help` for a command’s options.',
  ].join('\n');
}

function makeContext(values: CommandContext['values'], positionals: string[]): CommandContext {
  const json = values.json === true;
  const isTty = process.stderr.isTTY === true;
  return {
    values,
    positionals,
    json,
    verbose: values.verbose === true,
    print: (line = '') => {
      if (!json) process.stdout.write(`${line}\n`);
    },
    printJson: (value) => {
      if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    progress: (text) => {
      if (json) return;
      if (isTty) process.stderr.write(`\r\x1b[2K${text}`);
      else process.stderr.write(`${text}\n`);
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write(`${EDGEFLEET_VERSION}\n`);
    return 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`edgefleet: unknown command "${name}"\n\n${helpText()}\n`);
    return 2;
  }
  let verbose = rest.includes('--verbose');
  try {
    const parsed = parseArgs({
      args: rest,
      options: { ...sharedOptions, ...command.options },
      allowPositionals: true,
      strict: true,
    });
    verbose = parsed.values.verbose === true;
    if (parsed.values.help) {
      process.stdout.write(`Usage: edgefleet ${command.usage}\n\n${command.summary}\n`);
      return 0;
    }
    return await command.run(makeContext(parsed.values as CommandContext['values'], parsed.positionals));
  } catch (error) {
    return reportError(error, command, verbose);
  }
}

function reportError(error: unknown, command: Command, verbose: boolean): number {
  const usage =
    error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof EdgefleetError ? ` [${error.code}]` : '';
  process.stderr.write(`edgefleet ${command.name}: ${message}${code}\n`);
  if (usage) process.stderr.write(`Usage: edgefleet ${command.usage}\n`);
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  else if (!usage) process.stderr.write('(run with --verbose for details)\n');
  return usage ? 2 : 1;
}

const code = await main(process.argv.slice(2));
// Long-running commands (hub, agent) resolve only when they stop; then exit with their code.
process.exitCode = code;
