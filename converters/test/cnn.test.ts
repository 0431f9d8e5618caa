/**
 * A 1.15 M-parameter CNN classifier (built in test/support/cnn.ts): int8 is ≤ 0.30× the fp32 size,
 * agrees with fp32 on ≥ 98 % of held-out inputs in onnxruntime-node and -web, runs as int8 kernels,
 * and is not slower than fp32 in onnxruntime-node. fp16 and every calibration method hold up too.
 */
import type { PlainTensor } from '@edgefleet/bundle';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ConversionResult,
  convertModel,
  inspectOnnx,
  openSession,
  type SampleSet,
} from '../src/index.ts';
import { buildCnnClassifier, cnnSamples } from './support/cnn.ts';

let model: Uint8Array;
const calibration = cnnSamples(200, 2000, 1.0);
const heldOut = cnnSamples(200, 3000, 1.0);
const set = (s: { samples: Record<string, PlainTensor>[] }, description: string): SampleSet => ({
  samples: s.samples,
  origin: 'given',
  description,
});

async function accuracy(bytes: Uint8Array): Promise<number> {
  const session = await openSession(bytes);
  let correct = 0;
  for (const [i, s] of heldOut.samples.entries()) {
    const logits = (await session.run(s)).logits?.data as Float32Array;
    if (logits.indexOf(Math.max(...logits)) === heldOut.labels[i]) correct++;
  }
  await session.release();
  return correct / heldOut.samples.length;
}

const convert = (quantize: 'static' | 'fp16' | 'weight-only', method?: 'minmax' | 'percentile' | 'entropy') =>
  convertModel(model, {
    targets: quantize === 'fp16' ? ['webgpu'] : ['cpu'],
    quantize,
    calibration: set(calibration, '200 CNN samples'),
    verification: set(heldOut, '200 held-out CNN samples'),
    ...(method ? { method } : {}),
  });

describe('a 1 M-parameter CNN', () => {
  let int8: ConversionResult;
  beforeAll(async () => {
    model = await buildCnnClassifier();
    int8 = await convert('static');
  }, 120_000);

  it('int8: ≤ 0.30× the size, ≥ 98 % top-1 agreement in ORT-node and ORT-web, ≤ 1 pp accuracy drop', async () => {
    expect(inspectOnnx(model).parameterCount).toBeGreaterThan(1_000_000);
    const report = int8.report.artifacts.find((a) => a.precision === 'int8');
    expect(report?.status, report?.reason).toBe('packaged');
    expect(report?.sizeRatio).toBeLessThanOrEqual(0.3);
    expect(report?.weightCoverage).toBeGreaterThan(0.99);
    expect(report?.runtimes.map((r) => r.runtime)).toEqual(['onnxruntime-node', 'onnxruntime-web-wasm']);
    for (const r of report?.runtimes ?? [])
      expect(r.worst?.top1Agreement, r.runtime).toBeGreaterThanOrEqual(0.98);
    const artifact = int8.artifacts.find((a) => a.entry.precision === 'int8')?.bytes as Uint8Array;
    const [fp32Accuracy, int8Accuracy] = [await accuracy(model), await accuracy(artifact)];
    expect(fp32Accuracy).toBeGreaterThan(0.9); // the classifier is real: it mostly gets the class right
    expect(fp32Accuracy - int8Accuracy).toBeLessThanOrEqual(0.01);
    console.info(
      `CNN int8: size ${report?.sizeBytes} B (${report?.sizeRatio.toFixed(3)}×), top-1 agreement ` +
        report?.runtimes
          .map((r) => `${r.runtime} ${((r.worst?.top1Agreement ?? 0) * 100).toFixed(1)} %`)
          .join(', ') +
        `, accuracy fp32 ${(fp32Accuracy * 100).toFixed(1)} % → int8 ${(int8Accuracy * 100).toFixed(1)} %`,
    );
  });

  it('int8 runs in integer kernels: QLinearConv for every conv, QGemm for every linear layer', () => {
    const kernels = int8.report.artifacts.find((a) => a.precision === 'int8')?.kernels;
    expect(kernels?.ops.QLinearConv).toBe(3);
    expect(kernels?.ops.QGemm).toBe(2);
    expect(kernels?.floatComputeKernels).toBe(0);
  });

  it('int8 is not slower than fp32 in onnxruntime-node (medians of interleaved runs)', async () => {
    const artifact = int8.artifacts.find((a) => a.entry.precision === 'int8')?.bytes as Uint8Array;
    const sessions = [await openSession(model), await openSession(artifact)] as const;
    const times: [number[], number[]] = [[], []];
    const x = heldOut.samples[0] as Record<string, PlainTensor>;
    for (let i = 0; i < 400; i++) {
      // Alternate so that load on a shared machine hits both alike; warm up first.
      for (const k of [0, 1] as const) {
        const started = performance.now();
        await sessions[k].run(x);
        if (i >= 50) times[k].push(performance.now() - started);
      }
    }
    for (const s of sessions) await s.release();
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
    const [fp32, q8] = [median(times[0]), median(times[1])];
    console.info(
      `CNN latency in onnxruntime-node (1 thread): fp32 ${fp32.toFixed(3)} ms, int8 ${q8.toFixed(3)} ms`,
    );
    expect(q8).toBeLessThanOrEqual(fp32 * 1.1);
  });

  it('fp16 for WebGPU: ≤ 0.52× the size, ≥ 99.5 % top-1 agreement, no NaN', async () => {
    const result = await convert('fp16');
    const report = result.report.artifacts.find((a) => a.precision === 'fp16');
    expect(report?.status, report?.reason).toBe('packaged');
    expect(report?.sizeRatio).toBeLessThanOrEqual(0.52);
    for (const r of report?.runtimes ?? []) {
      expect(r.worst?.top1Agreement, r.runtime).toBeGreaterThanOrEqual(0.995);
      expect(r.worst?.nonFinite).toBe(0);
    }
  }, 60_000);

  it('percentile and entropy calibration and weight-only int8 also keep ≥ 98 % agreement', async () => {
    for (const [mode, method] of [
      ['static', 'percentile'],
      ['static', 'entropy'],
      ['weight-only', undefined],
    ] as const) {
      const result = await convert(mode, method);
      const report = result.report.artifacts.find((a) => a.precision !== 'fp32');
      expect(report?.status, `${mode} ${method}: ${report?.reason}`).toBe('packaged');
      expect(report?.sizeRatio).toBeLessThanOrEqual(0.3);
      for (const r of report?.runtimes ?? [])
        expect(r.worst?.top1Agreement, `${mode} ${method} ${r.runtime}`).toBeGreaterThanOrEqual(0.98);
    }
  }, 120_000);
});
