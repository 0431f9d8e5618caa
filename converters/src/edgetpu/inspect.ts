/**
 * What a compiled `_edgetpu.tflite` holds (research §3.4): each `edgetpu-custom-op` carries a
 * FlexBuffer map whose key "4" is the DarwiNN package (DWN1) — minimum runtime version, compiler,
 * chip, parameter bytes and the numerics of every input and output. Ops the compiler left out
 * stay ordinary TFLite ops around it and run on the CPU.
 */

import { TfliteError } from '../tflite/errors.ts';
import { BuiltinOperator } from '../tflite/generated/schema_generated.ts';
import { readTflite } from '../tflite/read.ts';
import { opName } from '../tflite/types.ts';
import { type EdgeTpuPackage, readDarwinnPackage } from './darwinn.ts';
import { FlexBytes, FlexError, readFlexBuffer } from './flexbuffer.ts';
import { builtinCodeOf, EDGETPU_CUSTOM_OP } from './lint.ts';

/** The Edge TPU caches about 8 MiB of parameters on chip; more are streamed (slower). */
export const EDGETPU_CACHE_BYTES = 8 * 1024 * 1024;

export interface EdgeTpuOpInfo {
  index: number;
  /** Custom-op data version (key "1"). */
  version?: number;
  /** Chip versions the package was built for (key "6"). */
  chipVersions: number[];
  package: EdgeTpuPackage;
}

export interface EdgeTpuInspection {
  /** Holds at least one edgetpu-custom-op. */
  compiled: boolean;
  edgeTpuOps: EdgeTpuOpInfo[];
  /** Every other op, in order: these run on the CPU. */
  cpuOps: string[];
  /** Highest min_runtime_version over the packages (0 when not compiled). */
  minRuntimeVersion: number;
  compilerVersions: string[];
  chips: string[];
  /** Parameter bytes over every executable (cached or streamed). */
  parameterBytes: number;
  /** True when the parameters do not fit the on-chip cache and will stream. */
  streamsParameters: boolean;
}

function entry(map: Map<string, unknown>, key: string): unknown {
  return map.get(key);
}

/** Inspect a .tflite; a plain (uncompiled) model gives `compiled: false`. */
export function inspectEdgeTpu(bytes: Uint8Array): EdgeTpuInspection {
  const model = readTflite(bytes);
  const graph = model.subgraphs[0];
  const edgeTpuOps: EdgeTpuOpInfo[] = [];
  const cpuOps: string[] = [];
  for (const [index, op] of (graph?.operators ?? []).entries()) {
    const code = model.operatorCodes[op.opcodeIndex];
    const builtin = builtinCodeOf(code);
    const custom = builtin === BuiltinOperator.CUSTOM ? String(code?.customCode ?? '') : undefined;
    if (custom !== EDGETPU_CUSTOM_OP) {
      cpuOps.push(custom ?? opName(builtin));
      continue;
    }
    const options = Uint8Array.from(op.customOptions);
    let map: unknown;
    try {
      map = readFlexBuffer(options);
    } catch (cause) {
      const why = cause instanceof FlexError ? cause.message : (cause as Error).message;
      throw new TfliteError('EDGETPU_INVALID', `op ${index}: unreadable Edge TPU options (${why})`, {
        cause,
      });
    }
    if (!(map instanceof Map))
      throw new TfliteError('EDGETPU_INVALID', `op ${index}: the Edge TPU options are not a map`);
    const executable = entry(map, '4');
    if (!(executable instanceof FlexBytes))
      throw new TfliteError('EDGETPU_INVALID', `op ${index}: the Edge TPU op has no compiled package`);
    const version = entry(map, '1');
    const chips = entry(map, '6');
    edgeTpuOps.push({
      index,
      ...(typeof version === 'number' ? { version } : {}),
      chipVersions: Array.isArray(chips) ? chips.filter((c): c is number => typeof c === 'number') : [],
      package: readDarwinnPackage(executable.bytes),
    });
  }
  const packages = edgeTpuOps.map((o) => o.package);
  const parameterBytes = packages.flatMap((p) => p.executables).reduce((sum, e) => sum + e.parameterBytes, 0);
  return {
    compiled: edgeTpuOps.length > 0,
    edgeTpuOps,
    cpuOps,
    minRuntimeVersion: Math.max(0, ...packages.map((p) => p.minRuntimeVersion)),
    compilerVersions: [...new Set(packages.flatMap((p) => (p.compilerVersion ? [p.compilerVersion] : [])))],
    chips: [...new Set(packages.flatMap((p) => p.executables.flatMap((e) => (e.chip ? [e.chip] : []))))],
    parameterBytes,
    streamsParameters: parameterBytes > EDGETPU_CACHE_BYTES,
  };
}

/** Why the compiled file does not belong to the twin (I/O tensors must be identical), or undefined. */
export function compiledMismatch(compiled: Uint8Array, twin: Uint8Array): string | undefined {
  const face = (bytes: Uint8Array) => {
    const m = readTflite(bytes);
    const g = m.subgraphs[0];
    const describe = (i: number) => {
      const t = g?.tensors[i];
      return `${t?.name}:${t?.type}:[${t?.shape.join(',')}]:${t?.quantization?.scale[0]}:${t?.quantization?.zeroPoint[0]}`;
    };
    return { inputs: (g?.inputs ?? []).map(describe), outputs: (g?.outputs ?? []).map(describe) };
  };
  const [a, b] = [face(compiled), face(twin)];
  for (const k of ['inputs', 'outputs'] as const)
    if (a[k].join('|') !== b[k].join('|'))
      return `its ${k} (${a[k].join(', ')}) differ from the CPU twin's (${b[k].join(', ')})`;
  return undefined;
}
