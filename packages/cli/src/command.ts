/** The shape of one CLI command. Each lives in `commands/<name>.ts` and is listed in `commands/index.ts`. */
import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  /** Parsed `--flags` (strings/booleans as declared) plus the shared ones. */
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  json: boolean;
  verbose: boolean;
  /** Write a line of human output (suppressed when --json). */
  print(line?: string): void;
  /** Write the machine-readable result (only when --json). */
  printJson(value: unknown): void;
  /** A progress line on stderr, overwritten in place on a terminal. */
  progress(text: string): void;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec;
  /** Resolves with the exit code (0 ok, 1 failure); a long-running command resolves when it stops. */
  run(ctx: CommandContext): Promise<number>;
}

/** Wrong arguments: exit code 2 and the usage line. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Read a required string option or throw a UsageError naming it. */
export function requireString(ctx: CommandContext, name: string): string {
  const value = ctx.values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

export function optionalString(ctx: CommandContext, name: string): string | undefined {
  const value = ctx.values[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Parse an integer option, with a usage error naming the flag. */
export function optionalInt(ctx: CommandContext, name: string): number | undefined {
  const value = optionalString(ctx, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got "${value}"`);
  return n;
}
