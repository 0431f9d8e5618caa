/**
 * The small real networks of the ONNX backend suite (PyTorch-converted Conv2d, Linear, BatchNorm,
 * depthwise…): fp16 and int8 artifacts load in onnxruntime-node and onnxruntime-web (WASM) and meet
 * research/converters.md §7.3 against the fp32 source; each artifact also runs the suite's own
 * input close to the suite's expected output.
 */
import type { PlainTensor } from '@edgefleet/bundle';
import { describe, expect, it } from 'vitest';
import { requireService } from '../../test/support/services.ts';
import { type ArtifactReport, convertModel, inspectOnnx, runOnnx } from '../src/index.ts';
import { readBackendCase } from './support/onnx-files.ts';

const shared = await requireService('shared');

const NETWORKS = [
  'test_Conv2d',
  'test_Conv2d_depthwise',
  'test_Conv2d_depthwise_with_multiplier',
  'test_Conv2d_groups',
  'test_Linear',
  'test_Linear_no_bias',
  'test_BatchNorm2d_eval',
];

function gate(report: ArtifactReport | undefined, runtime: string) {
  const r = report?.runtimes.find((x) => x.runtime === runtime);
  expect(r?.ok, `${report?.file} in ${runtime}: ${r?.error}`).toBe(true);
  return r?.worst as NonNullable<NonNullable<typeof r>['worst']>;
}

const measured: string[] = [];

describe.skipIf(!shared.available)('small real networks: fp16 and int8 meet §7.3', () => {
  for (const test of NETWORKS) {
    it(`${test}: fp16 and int8 for cpu and webgpu load in ORT-node and ORT-web and agree with fp32`, async () => {
      const c = await readBackendCase('pytorch-converted', test);
      const fp16 = await convertModel(c.model, { targets: ['cpu', 'webgpu'], quantize: 'fp16' });
      const int8 = await convertModel(c.model, { targets: ['cpu', 'webgpu'], quantize: 'static' });
      for (const result of [fp16, int8])
        for (const a of result.report.artifacts)
          expect(a.status, `${test} ${a.file}: ${a.reason}`).toBe('packaged');

      for (const target of ['cpu', 'webgpu']) {
        const half = fp16.report.artifacts.find((a) => a.target === target && a.precision === 'fp16');
        for (const runtime of ['onnxruntime-node', 'onnxruntime-web-wasm']) {
          const w = gate(half, runtime);
          expect(w.maxAbsError, `${test} fp16 ${runtime}`).toBeLessThanOrEqual(1e-2);
          expect(w.nonFinite).toBe(0);
          if (w.top1Agreement !== null) expect(w.top1Agreement).toBeGreaterThanOrEqual(0.995);
        }
        const q = int8.report.artifacts.find((a) => a.target === target && a.precision === 'int8');
        const wasm = gate(q, 'onnxruntime-web-wasm');
        const node = gate(q, 'onnxruntime-node');
        // §7.3: per-output rel-RMSE ≤ 2 % on wasm/ARM64; x86 without VNNI may be 2–3× worse unless
        // reduce_range (the CPU artifact uses it; the WebGPU one keeps full-range weights).
        expect(wasm.relRmse, `${test} int8 ${target} wasm`).toBeLessThanOrEqual(0.02);
        expect(node.relRmse, `${test} int8 ${target} node`).toBeLessThanOrEqual(
          target === 'cpu' ? 0.02 : 0.06,
        );
        for (const w of [wasm, node])
          if (w.top1Agreement !== null) expect(w.top1Agreement).toBeGreaterThanOrEqual(0.95);
        measured.push(
          `${test} ${target}: fp16 max|Δ| ${gate(half, 'onnxruntime-node').maxAbsError.toExponential(1)}, ` +
            `int8 rel-RMSE node ${(node.relRmse * 100).toFixed(2)} % / wasm ${(wasm.relRmse * 100).toFixed(2)} %, ` +
            `int8 kernels ${q?.kernels?.integerKernels ?? 0}`,
        );
      }
      // Weighted layers run as int8 kernels in ORT-node (no float Conv/Gemm/MatMul left).
      const cpuInt8 = int8.report.artifacts.find((a) => a.file === 'cpu/model-int8.onnx');
      if (!test.includes('BatchNorm')) {
        expect(cpuInt8?.kernels?.integerKernels).toBeGreaterThan(0);
        expect(cpuInt8?.kernels?.floatComputeKernels).toBe(0);
      }

      // The suite's own input: every artifact lands near the suite's expected output.
      for (const result of [fp16, int8]) {
        for (const a of result.artifacts) {
          const specs = inspectOnnx(a.bytes).inputs;
          const feeds = Object.fromEntries(specs.map((s, i) => [s.name, c.inputs[i] as PlainTensor]));
          const out = Object.values(await runOnnx(a.bytes, feeds))[0]?.data as Float32Array;
          const want = c.outputs[0]?.data as Float32Array;
          let dot = 0;
          let n1 = 0;
          let n2 = 0;
          for (let k = 0; k < want.length; k++) {
            dot += (out[k] as number) * (want[k] as number);
            n1 += (out[k] as number) ** 2;
            n2 += (want[k] as number) ** 2;
          }
          const min = a.entry.precision === 'fp16' || a.entry.precision === 'fp32' ? 0.9999 : 0.995;
          expect(dot / Math.sqrt(n1 * n2), `${test} ${a.entry.file} on the suite's input`).toBeGreaterThan(
            min,
          );
        }
      }
    }, 60_000);
  }

  it('reports what it measured', () => {
    console.info(measured.join('\n'));
    expect(measured.length).toBe(NETWORKS.length * 2);
  });
});
