/**
 * int8 against fp32 on the 1 M-parameter CNN: the converter's static int8 CPU artifact (calibrated
 * on 200 samples) against the fp32 source: file size, onnxruntime-node latency with the agent's
 * session options, and top-1 agreement on held-out inputs. Targets are the converter's own gates.
 */
import * as ort from 'onnxruntime-node';
import { type BenchModule, latencies, percentile, row } from './types.ts';

export const int8Bench: BenchModule = {
  name: 'int8',
  title: 'int8 vs fp32 (CNN, onnxruntime-node)',
  async run(ctx) {
    const { buildCnnClassifier, cnnSamples, convertModel, inspectOnnx } = await import(
      '@edgefleet/converters'
    );
    const count = ctx.quick ? 200 : 2000;
    ctx.progress('building the CNN classifier…');
    const fp32 = await buildCnnClassifier();
    const calibration = cnnSamples(ctx.quick ? 50 : 200, 2000, 1.0);
    const heldOut = cnnSamples(ctx.quick ? 50 : 200, 3000, 1.0);
    ctx.progress('converting to int8 (static, calibrated)…');
    const result = await convertModel(fp32, {
      targets: ['cpu'],
      quantize: 'static',
      calibration: { samples: calibration.samples, origin: 'given', description: 'CNN samples' },
      verification: { samples: heldOut.samples, origin: 'given', description: 'held-out CNN samples' },
      verifyWasm: false,
    });
    const built = result.artifacts.find((a) => a.entry.precision === 'int8');
    const report = result.report.artifacts.find((a) => a.precision === 'int8');
    if (!built || !report) throw new Error('the converter produced no int8 artifact');
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    };
    const sessions = {
      fp32: await ort.InferenceSession.create(fp32, options),
      int8: await ort.InferenceSession.create(built.bytes, options),
    };
    try {
      const top1 = (logits: Float32Array) => logits.indexOf(Math.max(...logits));
      let agree = 0;
      const feeds = heldOut.samples.map((s) => ({
        image: new ort.Tensor('float32', s.image?.data as Float32Array, [...(s.image?.shape ?? [])]),
      }));
      for (const feed of feeds) {
        const [a, b] = [await sessions.fp32.run(feed), await sessions.int8.run(feed)];
        if (top1(a.logits?.data as Float32Array) === top1(b.logits?.data as Float32Array)) agree++;
      }
      ctx.progress(`timing ${count} runs each…`);
      const feed = feeds[0] as Record<string, ort.Tensor>;
      const ms = { fp32: [] as number[], int8: [] as number[] };
      await latencies(0, 50, () => sessions.fp32.run(feed));
      await latencies(0, 50, () => sessions.int8.run(feed));
      for (let done = 0; done < count; done += 100) {
        ms.fp32.push(...(await latencies(100, 0, () => sessions.fp32.run(feed))));
        ms.int8.push(...(await latencies(100, 0, () => sessions.int8.run(feed))));
      }
      const [i50, f50] = [percentile(ms.int8, 0.5), percentile(ms.fp32, 0.5)];
      const agreement = agree / feeds.length;
      return {
        name: 'int8',
        title: this.title,
        rows: [
          row('model size', built.bytes.byteLength / 2 ** 20, 'MB', {
            baseline: fp32.byteLength / 2 ** 20,
            target: 'ratio ≤ 0.30',
            met: built.bytes.byteLength <= 0.3 * fp32.byteLength,
          }),
          row('p50 latency', i50, 'ms', { baseline: f50, target: 'ratio ≤ 1.00', met: i50 <= f50 }),
          row('p99 latency', percentile(ms.int8, 0.99), 'ms', { baseline: percentile(ms.fp32, 0.99) }),
          row('top-1 agreement with fp32', agreement * 100, '%', {
            target: '≥ 98 %',
            met: agreement >= 0.98,
          }),
        ],
        skipped: [],
        notes: [
          `CNN of ${inspectOnnx(fp32).parameterCount.toLocaleString('en-US')} parameters; int8: static, per-channel defaults, ${calibration.samples.length} calibration samples; agreement on ${feeds.length} held-out inputs; ${count} timed runs each (1 intra-op thread, alternating blocks of 100).`,
        ],
      };
    } finally {
      await sessions.fp32.release();
      await sessions.int8.release();
    }
  },
};
