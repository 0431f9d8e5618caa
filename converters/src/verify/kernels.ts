/**
 * Which kernels onnxruntime-node actually runs: the model is loaded with full optimisation and
 * `optimizedModelFilePath`, and the saved graph's op histogram says whether Q/DQ groups were fused
 * into integer kernels (QLinearConv, QGemm, …) or left as float ops between Q/DQ.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOnnx } from '../onnx/io.ts';
import { openSession } from '../onnx/runtime.ts';

/** Ops that compute in integers. */
export const INTEGER_KERNELS = new Set([
  'QLinearConv',
  'QLinearMatMul',
  'QGemm',
  'QLinearAdd',
  'QLinearMul',
  'QLinearAveragePool',
  'QLinearGlobalAveragePool',
  'QLinearConcat',
  'QLinearSigmoid',
  'QLinearLeakyRelu',
  'MatMulInteger',
  'ConvInteger',
  'MatMulIntegerToFloat',
  'DynamicQuantizeMatMul',
  'NhwcQLinearConv',
  'QLinearSoftmax',
]);
/** Float ops that do the heavy lifting when they are not fused. */
export const FLOAT_COMPUTE = new Set([
  'Conv',
  'Gemm',
  'MatMul',
  'FusedConv',
  'FusedGemm',
  'FusedMatMul',
  'NchwcConv',
]);

export interface KernelReport {
  /** Op histogram of the optimised graph (domain-qualified for non-default domains). */
  ops: Record<string, number>;
  integerKernels: number;
  floatComputeKernels: number;
}

/** Load in ORT-node with all optimisations and report the kernels of the optimised graph. */
export async function inspectKernels(model: Uint8Array): Promise<KernelReport> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-ort-opt-'));
  try {
    const path = join(dir, 'optimized.onnx');
    const session = await openSession(model, { optimization: 'all', optimizedModelFilePath: path });
    await session.release();
    const optimized = parseOnnx(new Uint8Array(await readFile(path)));
    const ops: Record<string, number> = {};
    let integerKernels = 0;
    let floatComputeKernels = 0;
    for (const n of optimized.graph?.node ?? []) {
      ops[n.opType] = (ops[n.opType] ?? 0) + 1;
      if (INTEGER_KERNELS.has(n.opType)) integerKernels++;
      if (FLOAT_COMPUTE.has(n.opType)) floatComputeKernels++;
    }
    return { ops, integerKernels, floatComputeKernels };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
