/**
 * A stand-in for `edgetpu_compiler` (closed, x86-64 Debian only, not installable here), for tests
 * that need a model version whose ONNX source, CPU twin and compiled Edge TPU file all agree.
 *
 * It behaves like the compiler at its interface: `edgetpu_compiler --out_dir DIR [...] model.tflite`
 * writes `DIR/model_edgetpu.tflite` and `DIR/model_edgetpu.log` and prints the operator table. The
 * "compiled" file is the input model with its graph replaced by one `edgetpu-custom-op` whose
 * payload (the DarwiNN executable package) comes from a real compiled model in
 * `../shared/models/tflite`: the I/O are exactly the twin's (what the converters' acceptance check,
 * `compiledMismatch`, requires) and `inspectEdgeTpu` reads a real package. The same splice as
 * converters/test/edgetpu.test.ts, here done on whatever model the compiler is handed, so it does
 * not depend on a conversion being repeated byte for byte. No Edge TPU could run the result; on a
 * machine without libedgetpu the agent runs the twin instead, which is the point of shipping both.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BuiltinOperator,
  OperatorCodeT,
  OperatorT,
} from '../../converters/src/tflite/generated/schema_generated.ts';
import { readTflite, writeTflite } from '../../converters/src/tflite/read.ts';

/** The compiler's console output for a fully mapped model (parsed by `parseCompilerLog`). */
export function standInLog(opCount: number): string {
  return `Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 12 ms.

Input model: model.tflite
Output model: model_edgetpu.tflite
On-chip memory used for caching model parameters: 0.10MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: ${opCount}
Operation log: model_edgetpu.log

Operator                       Count      Status

EDGETPU_STAND_IN               ${opCount}          Mapped to Edge TPU
`;
}

/** `twin` with its graph replaced by one Edge TPU op carrying `realCompiled`'s package. */
export function spliceCompiled(
  twin: Uint8Array,
  realCompiled: Uint8Array,
): { bytes: Uint8Array; ops: number } {
  const model = readTflite(twin);
  const real = readTflite(realCompiled);
  const graph = model.subgraphs[0];
  const payload = real.subgraphs[0]?.operators.find((op) => {
    const code = real.operatorCodes[op.opcodeIndex];
    return code?.customCode === 'edgetpu-custom-op';
  })?.customOptions;
  if (!graph || !payload?.length)
    throw new Error('no graph in the twin, or no edgetpu-custom-op in the real model');
  const ops = graph.operators.length;
  model.operatorCodes = [
    new OperatorCodeT(BuiltinOperator.CUSTOM, 'edgetpu-custom-op', 1, BuiltinOperator.CUSTOM),
  ];
  const op = new OperatorT(0, [...graph.inputs], [...graph.outputs]);
  op.customOptions = [...payload];
  graph.operators = [op];
  return { bytes: writeTflite(model), ops };
}

/** The command line, as `edgetpu_compiler` takes it; the real compiled model's path comes first. */
export async function main(argv: string[]): Promise<void> {
  const [realPath, ...args] = argv;
  let outDir = '.';
  const inputs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--out_dir' || a === '-o') outDir = args[++i] as string;
    else if (a === '--min_runtime_version' || a === '-m') i++;
    else if (!a.startsWith('-')) inputs.push(a);
  }
  const input = inputs[0];
  if (!realPath || !input) {
    process.stderr.write('usage: edgetpu_compiler [--out_dir DIR] model.tflite\n');
    process.exit(1);
  }
  const { bytes, ops } = spliceCompiled(
    new Uint8Array(await readFile(input)),
    new Uint8Array(await readFile(realPath)),
  );
  const stem = basename(input).replace(/\.tflite$/, '');
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, `${stem}_edgetpu.tflite`), bytes);
  const log = standInLog(ops);
  await writeFile(join(outDir, `${stem}_edgetpu.log`), log.split('\n').slice(-5).join('\n'));
  process.stdout.write(log);
}

/**
 * Write an executable stand-in compiler into `dir` (this module bundled by esbuild, run by this
 * Node) that takes its Edge TPU package from `realCompiled`. Point `EDGEFLEET_EDGETPU_COMPILER` at it.
 */
export async function installStandInCompiler(dir: string, realCompiled: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const bundle = join(dir, 'edgetpu-stand-in.mjs');
  // Loaded here only: the bundled stand-in never needs esbuild.
  const esbuild = await import('esbuild');
  await esbuild.build({
    stdin: {
      contents: `import { main } from ${JSON.stringify(fileURLToPath(import.meta.url))};\nawait main(process.argv.slice(2));\n`,
      resolveDir: dir,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    // Only the TFLite reader/writer is needed; esbuild itself is not.
    external: ['esbuild'],
    logLevel: 'error',
  });
  const script = join(dir, 'edgetpu_compiler');
  await writeFile(
    script,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(bundle)} ${JSON.stringify(realCompiled)} "$@"\n`,
  );
  await chmod(script, 0o755);
  return script;
}
