/**
 * `edgetpu_compiler` (closed, x86-64 Debian only) when it is on PATH: compile a full-int8 model in
 * a scratch folder and read back `<name>_edgetpu.tflite` and its log. Without the compiler nothing
 * can make the Edge TPU bitstream (research §3.4), so callers ship the CPU twin and say so.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { TfliteError } from '../tflite/errors.ts';

export const EDGETPU_COMPILER = 'edgetpu_compiler';

/** The compiler's path on PATH (env `EDGEFLEET_EDGETPU_COMPILER` overrides), or undefined. */
export async function findEdgeTpuCompiler(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const candidates = env.EDGEFLEET_EDGETPU_COMPILER
    ? [env.EDGEFLEET_EDGETPU_COMPILER]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, EDGETPU_COMPILER));
  for (const path of candidates) {
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface CompilerLog {
  compilerVersion?: string;
  opsOnEdgeTpu?: number;
  opsOnCpu?: number;
  totalOps?: number;
  subgraphs?: number;
  /** "On-chip memory used for caching model parameters: 1.05MiB" and friends, as printed. */
  onChipMemoryUsed?: string;
  offChipMemoryUsed?: string;
  /** The operator table: op, count, status ("Mapped to Edge TPU", or why not). */
  operators: { op: string; count: number; status: string }[];
}

const number = (text: string, re: RegExp) => {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
};

/** Parse the compiler's console output and `.log` (the same lines; either or both). */
export function parseCompilerLog(text: string): CompilerLog {
  const operators: CompilerLog['operators'] = [];
  const seen = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    // "CONV_2D                        3          Mapped to Edge TPU"
    const m = /^\s*([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$/.exec(line);
    if (!m || m[1] === 'Operator') continue;
    const key = `${m[1]}|${m[2]}|${m[3]}`;
    if (seen.has(key)) continue; // console and log both list the table
    seen.add(key);
    operators.push({ op: m[1] as string, count: Number(m[2]), status: m[3] as string });
  }
  const version = /Edge TPU Compiler version\s+(\S+)/.exec(text)?.[1];
  const onChip = /On-chip memory used for caching model parameters:\s*(\S+)/.exec(text)?.[1];
  const offChip = /Off-chip memory used for streaming uncached model parameters:\s*(\S+)/.exec(text)?.[1];
  const opsOnEdgeTpu = number(text, /Number of operations that will run on Edge TPU:\s*(\d+)/);
  const opsOnCpu = number(text, /Number of operations that will run on CPU:\s*(\d+)/);
  const totalOps = number(text, /Total number of operations:\s*(\d+)/);
  const subgraphs = number(text, /Number of Edge TPU subgraphs:\s*(\d+)/);
  const mapped = operators.filter((o) => o.status === 'Mapped to Edge TPU').reduce((a, o) => a + o.count, 0);
  const all = operators.reduce((a, o) => a + o.count, 0);
  return {
    ...(version ? { compilerVersion: version } : {}),
    // A fully mapped model prints no "will run on" lines: the table says it.
    ...(opsOnEdgeTpu !== undefined ? { opsOnEdgeTpu } : operators.length ? { opsOnEdgeTpu: mapped } : {}),
    ...(opsOnCpu !== undefined ? { opsOnCpu } : operators.length ? { opsOnCpu: all - mapped } : {}),
    ...(totalOps !== undefined ? { totalOps } : operators.length ? { totalOps: all } : {}),
    ...(subgraphs !== undefined ? { subgraphs } : {}),
    ...(onChip ? { onChipMemoryUsed: onChip } : {}),
    ...(offChip ? { offChipMemoryUsed: offChip } : {}),
    operators,
  };
}

export interface CompileResult {
  bytes: Uint8Array;
  log: CompilerLog;
  /** The console output and log file, as written. */
  text: string;
}

/**
 * Compile `bytes` (a full-int8 .tflite) with the compiler at `compiler`; EDGETPU_COMPILER_FAILED
 * with the compiler's own words when it fails or writes no model.
 */
export async function compileForEdgeTpu(
  bytes: Uint8Array,
  compiler: string,
  options: { minRuntimeVersion?: number; timeoutMs?: number } = {},
): Promise<CompileResult> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-edgetpu-'));
  try {
    await writeFile(join(dir, 'model.tflite'), bytes);
    const args = ['--out_dir', dir, '--show_operations'];
    if (options.minRuntimeVersion) args.push('--min_runtime_version', String(options.minRuntimeVersion));
    args.push(join(dir, 'model.tflite'));
    const console = await new Promise<string>((resolve, reject) => {
      execFile(
        compiler,
        args,
        { cwd: dir, timeout: options.timeoutMs ?? 600_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          const text = `${stdout}\n${stderr}`.trim();
          if (error)
            reject(
              new TfliteError(
                'EDGETPU_COMPILER_FAILED',
                `edgetpu_compiler failed: ${text.split('\n').slice(-3).join(' ') || error.message}`,
                { cause: error },
              ),
            );
          else resolve(text);
        },
      );
    });
    const logText = await readFile(join(dir, 'model_edgetpu.log'), 'utf8').catch(() => '');
    const compiled = await readFile(join(dir, 'model_edgetpu.tflite')).catch(() => undefined);
    if (!compiled)
      throw new TfliteError(
        'EDGETPU_COMPILER_FAILED',
        `edgetpu_compiler wrote no model_edgetpu.tflite: ${console.split('\n').slice(-3).join(' ')}`,
      );
    const text = `${console}\n${logText}`;
    return { bytes: new Uint8Array(compiled), log: parseCompilerLog(text), text };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
