/**
 * WebGPU artifacts in Debian chromium (WebGPU on SwiftShader) through onnxruntime-web: fp32 and int8
 * match WASM in the same page; fp16 needs `shader-f16`, which SwiftShader lacks, so the artifact's
 * `requires` is real and its fallback is what such a browser runs.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage, type ServedFile, serveFiles } from '../../test/support/browser.ts';
import { projectRoot, requireService } from '../../test/support/services.ts';
import { type ConversionResult, convertModel, mlpModel, type SampleSet } from '../src/index.ts';
import { buildCnnClassifier, cnnSamples } from './support/cnn.ts';

const chromium = await requireService('chromium');

const PAGE = `<!doctype html><script type="module">
import * as ort from '/ort/ort.webgpu.min.mjs';
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;
window.ort = ort;
window.ready = true;
</script>`;

interface PageRun {
  ok: boolean;
  error?: string;
  outputs?: Record<string, number[]>;
}

/** Create a session for `url` with one execution provider and run it on the given inputs. */
async function runInPage(
  page: Page,
  url: string,
  ep: 'webgpu' | 'wasm',
  inputs: Record<string, { dims: number[]; data: number[] }>,
): Promise<PageRun> {
  return page.evaluate(
    async ({ url, ep, inputs }) => {
      // biome-ignore lint/suspicious/noExplicitAny: onnxruntime-web's global in the page
      const ort = (window as any).ort;
      try {
        const session = await ort.InferenceSession.create(url, { executionProviders: [ep] });
        const feeds: Record<string, unknown> = {};
        for (const [name, t] of Object.entries(inputs))
          feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
        const result = await session.run(feeds);
        const outputs: Record<string, number[]> = {};
        for (const [name, t] of Object.entries(result))
          outputs[name] = Array.from((t as { data: Float32Array }).data);
        await session.release();
        return { ok: true, outputs };
      } catch (error) {
        return { ok: false, error: String((error as Error).message ?? error) };
      }
    },
    { url, ep, inputs },
  );
}

function maxRelDiff(a: number[], b: number[]): number {
  const scale = Math.max(1, ...b.map(Math.abs));
  return Math.max(0, ...a.map((v, i) => Math.abs(v - (b[i] as number)))) / scale;
}

describe.skipIf(!chromium.available)('WebGPU artifacts in chromium (SwiftShader)', () => {
  let browser: Browser;
  let page: Page;
  let server: { url: string; close(): Promise<void> };
  const results: Record<string, ConversionResult> = {};
  const inputs: Record<string, Record<string, { dims: number[]; data: number[] }>> = {};

  beforeAll(async () => {
    const cnn = await buildCnnClassifier();
    const cnnData = cnnSamples(64, 7000, 1.0);
    const given = (s: SampleSet['samples']): SampleSet => ({
      samples: s,
      origin: 'given',
      description: 'cnn',
    });
    results.cnnInt8 = await convertModel(cnn, {
      targets: ['webgpu'],
      quantize: 'static',
      calibration: given(cnnData.samples.slice(0, 48)),
      verification: given(cnnData.samples.slice(48)),
    });
    results.cnnFp16 = await convertModel(cnn, {
      targets: ['webgpu'],
      quantize: 'fp16',
      calibration: given(cnnData.samples.slice(0, 48)),
      verification: given(cnnData.samples.slice(48)),
    });
    const mlp = mlpModel({ inputs: 32, hidden: [64], outputs: 10, batch: 'N' });
    results.mlpWeightOnly = await convertModel(mlp, { targets: ['webgpu'], quantize: 'weight-only' });
    const files: Record<string, ServedFile> = { '/index.html': new TextEncoder().encode(PAGE) };
    const dist = join(projectRoot, 'node_modules/onnxruntime-web/dist');
    for (const f of await readdir(dist))
      if (/\.(mjs|wasm)$/.test(f)) files[`/ort/${f}`] = { path: join(dist, f) };
    for (const [name, r] of Object.entries(results))
      for (const a of r.artifacts) files[`/${name}/${a.entry.file}`] = a.bytes;
    const x = cnnData.samples[60]?.image;
    inputs.cnn = { image: { dims: x?.shape ?? [], data: Array.from(x?.data as Float32Array) } };
    inputs.mlp = { input: { dims: [1, 32], data: Array.from({ length: 32 }, (_, i) => Math.sin(i)) } };
    server = await serveFiles(files);
    browser = await launchBrowser({ webgpu: true });
    ({ page } = await newPage(browser));
    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('the page has a WebGPU adapter (SwiftShader) without shader-f16', async () => {
    const adapter = await page.evaluate(async () => {
      const gpu = (
        navigator as unknown as { gpu?: { requestAdapter(): Promise<{ features: Set<string> } | null> } }
      ).gpu;
      const a = await gpu?.requestAdapter();
      return a ? { f16: a.features.has('shader-f16') } : null;
    });
    expect(adapter).not.toBeNull();
    expect(adapter?.f16).toBe(false);
  });

  for (const [name, file, input] of [
    ['cnnInt8', 'webgpu/model-int8.onnx', 'cnn'],
    ['cnnInt8', 'webgpu/model.onnx', 'cnn'],
    ['mlpWeightOnly', 'webgpu/model-int8-weight-only.onnx', 'mlp'],
  ] as const) {
    it(`${name} ${file}: WebGPU runs it and matches WASM`, async () => {
      const url = `${server.url}/${name}/${file}`;
      const gpu = await runInPage(page, url, 'webgpu', inputs[input] ?? {});
      const wasm = await runInPage(page, url, 'wasm', inputs[input] ?? {});
      expect(gpu.ok, gpu.error).toBe(true);
      expect(wasm.ok, wasm.error).toBe(true);
      for (const [out, values] of Object.entries(wasm.outputs ?? {})) {
        const diff = maxRelDiff(gpu.outputs?.[out] ?? [], values);
        console.info(`${name} ${file} ${out}: max |WebGPU − WASM| / scale = ${diff.toExponential(2)}`);
        expect(diff).toBeLessThanOrEqual(1e-4);
      }
    }, 60_000);
  }

  it('fp16 needs shader-f16: it fails on this adapter, runs in WASM, and its fp32 fallback runs on WebGPU', async () => {
    const entry = results.cnnFp16?.artifacts.find((a) => a.entry.precision === 'fp16')?.entry;
    expect(entry?.requires).toEqual(['shader-f16']);
    const url = `${server.url}/cnnFp16/webgpu/model-fp16.onnx`;
    const gpu = await runInPage(page, url, 'webgpu', inputs.cnn ?? {});
    expect(gpu.ok).toBe(false);
    expect(gpu.error).toMatch(/f16/i);
    const wasm = await runInPage(page, url, 'wasm', inputs.cnn ?? {});
    expect(wasm.ok, wasm.error).toBe(true);
    const fallback = await runInPage(
      page,
      `${server.url}/cnnFp16/${entry?.fallback}`,
      'webgpu',
      inputs.cnn ?? {},
    );
    expect(fallback.ok, fallback.error).toBe(true);
    const diff = maxRelDiff(wasm.outputs?.logits ?? [], fallback.outputs?.logits ?? []);
    expect(diff).toBeLessThanOrEqual(1e-2); // fp16 (WASM) vs fp32 (WebGPU)
  }, 60_000);
});
