/**
 * The browser SDK in Debian chromium (headless; WebGPU through SwiftShader) against a real hub:
 * a converted Conv2d on WebGPU and on WASM, an fp16 artifact that fails at its first run on an
 * adapter without `shader-f16` and falls back, a TFLite-only version through tfjs-tflite, a
 * tampered artifact refused, and a second load served from the Cache API. Outputs are checked
 * against onnxruntime-node / native TFLite on the same artifact. Screenshots: test-results/screenshots/.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateSigningKey,
  type PackedBundle,
  publicKeyOf,
  type SigningKeyFile,
  unpackBundle,
} from '@edgefleet/bundle';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pixelsToTensor, topK } from '../packages/web/src/index.ts';
import { launchBrowser, newPage, screenshot } from './support/browser.ts';
import { loadAndPredict, type SdkServer, startSdkServer } from './support/browser-sdk.ts';
import {
  CNN_LABELS,
  CNN_PREPROCESSING,
  cnnModel,
  convBundle,
  imageClassifierBundle,
  maxAbsDiff,
  mlpBundle,
  ortNodeOutputs,
  seededData,
  sineBundle,
  tfliteNodeOutput,
} from './support/browser-sdk-models.ts';
import { type HubProc, hubApi, spawnHub } from './support/processes.ts';
import { projectRoot, requireService } from './support/services.ts';

const chromium = await requireService('chromium');
const shared = await requireService('shared');

describe.skipIf(!chromium.available || !shared.available)('browser SDK in chromium', () => {
  let dir: string;
  let hub: HubProc;
  let server: SdkServer;
  let gpuBrowser: Browser;
  let wasmBrowser: Browser;
  let token: string;
  let key: SigningKeyFile;
  let conv: PackedBundle;
  let sine: PackedBundle;
  let mlp: PackedBundle;
  const convInput = { name: '0', shape: [2, 3, 7, 5], data: seededData(2 * 3 * 7 * 5, 11) };
  const mlpInput = { name: 'input', shape: [1, 16], data: seededData(16, 12) };
  const file = (bundle: PackedBundle, name: string) => {
    const a = bundle.manifest.artifacts.find((x) => x.file === name);
    if (!a) throw new Error(`${name} not in the bundle`);
    return a;
  };
  // The bytes of an artifact, as the converters packed them.
  const artifactBytes = async (bundle: PackedBundle, name: string) => {
    const files = (await unpackBundle(bundle.bytes)).files;
    const bytes = files.get(name);
    if (!bytes) throw new Error(`${name} not in the bundle`);
    return bytes;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-browser-sdk-'));
    hub = await spawnHub({ dataDir: join(dir, 'hub') });
    const api = hubApi(hub.url, hub.adminToken);
    key = await generateSigningKey();
    await api('POST', '/keys', { name: 'browser-tests', publicKey: key.publicKey });
    [conv, sine, mlp] = await Promise.all([convBundle(key), sineBundle(key), mlpBundle(key)]);
    await api('PUT', '/models/conv/versions/1.0.0', conv.bytes);
    await api('PUT', '/models/mlp/versions/1.0.0', mlp.bytes);
    await api('PUT', '/models/cnn/versions/1.0.0', cnnModel());
    await api('PUT', '/models/cnn/versions/1.1.0', (await imageClassifierBundle(key)).bytes);
    await api('PUT', '/models/sine/versions/1.0.0', sine.bytes);
    token = (await api<{ token: string }>('POST', '/tokens', { role: 'viewer', name: 'browser-sdk' })).token;
    server = await startSdkServer({ hubUrl: hub.url });
    [gpuBrowser, wasmBrowser] = await Promise.all([
      launchBrowser({ webgpu: true }),
      launchBrowser({ webgpu: false }),
    ]);
  }, 240_000);

  afterAll(async () => {
    await gpuBrowser?.close();
    await wasmBrowser?.close();
    await server?.close();
    await hub?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs the converted Conv2d on WebGPU, passing over the fp16 artifact the adapter cannot run', async () => {
    const { context, page } = await newPage(gpuBrowser);
    await page.goto(server.url);
    const result = await loadAndPredict(
      page,
      'Conv2d on WebGPU',
      { model: 'conv', token, device: 'webgpu' },
      [convInput],
    );
    await screenshot(page, 'browser-sdk-webgpu');
    await context.close();
    expect(result.error).toBeUndefined();
    const backend = result.backend!;
    expect(backend.executionProvider).toBe('webgpu');
    expect(backend.profile).toBe('browser-webgpu');
    expect(backend.webgpu.features).not.toContain('shader-f16');
    expect(backend.skipped).toContainEqual({
      file: 'webgpu/model-fp16.onnx',
      reason: 'WebGPU adapter lacks shader-f16',
    });
    expect(backend.artifact.file).toBe('cpu/model.onnx');
    expect(backend.probe).toBe('smoke-test');
    // The hub has no browser enrollment yet: the model runs, reporting says why it is off.
    expect(result.reporting?.enabled).toBe(false);
    expect(result.reporting?.reason).toMatch(/browser enrollment failed/);
    const expected = await ortNodeOutputs(await artifactBytes(conv, 'cpu/model.onnx'), convInput);
    const [name] = Object.keys(expected);
    expect(maxAbsDiff(result.outputs![0]![name!]!.data, expected[name!]!)).toBeLessThan(1e-4);
    expect(result.outputs![0]![name!]!.shape).toEqual([2, 4, 5, 4]);
  });

  it('prefers WASM over a software WebGPU adapter in auto mode, and says so', async () => {
    const { context, page } = await newPage(gpuBrowser);
    await page.goto(server.url);
    const result = await loadAndPredict(page, 'auto on SwiftShader: WASM first', { model: 'conv', token }, [
      convInput,
    ]);
    await screenshot(page, 'browser-sdk-auto-software-adapter');
    await context.close();
    expect(result.backend?.webgpu.adapter?.isFallbackAdapter).toBe(true);
    expect(result.backend?.executionProvider).toBe('wasm');
    expect(result.backend?.notes[0]).toMatch(/software fallback/);
  });

  it('runs on WASM when the browser has WebGPU disabled, matching onnxruntime-node on the same artifact', async () => {
    const { context, page } = await newPage(wasmBrowser);
    await page.goto(server.url);
    const auto = await loadAndPredict(page, 'Conv2d on WASM (WebGPU disabled)', { model: 'conv', token }, [
      convInput,
    ]);
    await screenshot(page, 'browser-sdk-wasm');
    const fp32 = await loadAndPredict(
      page,
      'Conv2d fp32 on WASM',
      { model: 'conv', token, artifact: 'cpu/model.onnx' },
      [convInput],
    );
    await context.close();
    expect(auto.error).toBeUndefined();
    expect(auto.backend?.executionProvider).toBe('wasm');
    expect(auto.backend?.profile).toBe('browser-wasm');
    expect(auto.backend?.webgpu.available).toBe(false);
    // Without WebGPU the smallest CPU artifact comes first: the int8 one.
    expect(auto.backend?.artifact.file).toBe('cpu/model-int8.onnx');
    const int8 = file(conv, 'cpu/model-int8.onnx');
    const int8Expected = await ortNodeOutputs(await artifactBytes(conv, int8.file), convInput);
    const [name] = Object.keys(int8Expected);
    const smoke = JSON.parse(new TextDecoder().decode(await artifactBytes(conv, 'smoke-test.json'))) as {
      expected: Record<string, { tolerance: { maxAbs: number } }>;
    };
    const band = smoke.expected[int8.file]?.tolerance.maxAbs ?? 0;
    // Two int8 engines (x86 node, wasm) round differently; each stays within the artifact's verified
    // band around fp32, which the smoke-test tolerance (twice the worst error seen) already spans.
    expect(band).toBeGreaterThan(0);
    expect(maxAbsDiff(auto.outputs![0]![name!]!.data, int8Expected[name!]!)).toBeLessThanOrEqual(band);
    const fp32Expected = await ortNodeOutputs(await artifactBytes(conv, 'cpu/model.onnx'), convInput);
    expect(fp32.backend?.artifact.file).toBe('cpu/model.onnx');
    expect(maxAbsDiff(fp32.outputs![0]![name!]!.data, fp32Expected[name!]!)).toBeLessThan(1e-5);
  });

  it('falls back from an fp16 MLP that fails at its first run on WebGPU without shader-f16', async () => {
    const { context, page } = await newPage(gpuBrowser);
    await page.goto(server.url);
    const result = await loadAndPredict(
      page,
      'fp16 MLP pinned on WebGPU: falls back at its first run',
      { model: 'mlp', token, device: 'webgpu', artifact: 'webgpu/model-fp16.onnx' },
      [mlpInput],
    );
    await screenshot(page, 'browser-sdk-fp16-first-run');
    await context.close();
    expect(result.error).toBeUndefined();
    const backend = result.backend!;
    // The session opens (ORT compiles shaders lazily for Gemm); the smoke-test run is what fails.
    expect(backend.fallbacks).toEqual([
      expect.objectContaining({
        file: 'webgpu/model-fp16.onnx',
        executionProvider: 'webgpu',
        stage: 'first-run',
      }),
    ]);
    expect(backend.fallbacks[0]?.error.message).toMatch(/requires f16/);
    // Its declared fallback, still on WebGPU.
    expect(backend.artifact.file).toBe(file(mlp, 'webgpu/model-fp16.onnx').fallback);
    expect(backend.executionProvider).toBe('webgpu');
    const expected = await ortNodeOutputs(await artifactBytes(mlp, backend.artifact.file), mlpInput);
    expect(maxAbsDiff(result.outputs![0]!.output!.data, expected.output!)).toBeLessThan(1e-5);
  });

  it('falls back from an fp16 Conv2d that already fails at session creation', async () => {
    const { context, page } = await newPage(gpuBrowser);
    await page.goto(server.url);
    const result = await loadAndPredict(
      page,
      'fp16 Conv2d pinned on WebGPU: falls back at session creation',
      { model: 'conv', token, device: 'webgpu', artifact: 'webgpu/model-fp16.onnx' },
      [convInput],
    );
    await screenshot(page, 'browser-sdk-fp16-session');
    await context.close();
    expect(result.error).toBeUndefined();
    // ORT's WebGPU EP transposes Conv weights while it builds the session: f16 fails right there.
    expect(result.backend?.fallbacks).toEqual([
      expect.objectContaining({
        file: 'webgpu/model-fp16.onnx',
        executionProvider: 'webgpu',
        stage: 'session',
      }),
    ]);
    expect(result.backend?.artifact.file).toBe('cpu/model.onnx');
    expect(result.backend?.executionProvider).toBe('webgpu');
    const expected = await ortNodeOutputs(await artifactBytes(conv, 'cpu/model.onnx'), convInput);
    const [name] = Object.keys(expected);
    expect(maxAbsDiff(result.outputs![0]![name!]!.data, expected[name!]!)).toBeLessThan(1e-4);
  });

  it('falls back inside the first predict() when the load ran no probe', async () => {
    const { context, page } = await newPage(gpuBrowser);
    await page.goto(server.url);
    const result = await loadAndPredict(
      page,
      'fp16 MLP on WebGPU without a probe: falls back in the first predict()',
      { model: 'mlp', token, device: 'webgpu', artifact: 'webgpu/model-fp16.onnx', probe: 'none' },
      [mlpInput, mlpInput],
    );
    await screenshot(page, 'browser-sdk-fp16-first-predict');
    await context.close();
    expect(result.error).toBeUndefined();
    expect(result.backendAtLoad?.artifact.file).toBe('webgpu/model-fp16.onnx');
    expect(result.backendAtLoad?.probe).toBe('none');
    expect(result.backend?.artifact.file).toBe('webgpu/model.onnx');
    expect(result.backend?.fallbacks.map((f) => f.stage)).toEqual(['first-run']);
    const expected = await ortNodeOutputs(await artifactBytes(mlp, 'webgpu/model.onnx'), mlpInput);
    expect(result.outputs).toHaveLength(2);
    for (const out of result.outputs ?? [])
      expect(maxAbsDiff(out.output!.data, expected.output!)).toBeLessThan(1e-5);
  });

  it('runs a TFLite-only version through tfjs-tflite, matching native TFLite', async () => {
    const { context, page } = await newPage(gpuBrowser);
    await page.goto(server.url);
    const xs = [0, 0.5, 1, 2, 3, 6];
    const result = await loadAndPredict(
      page,
      'TFLite sine model through tfjs-tflite',
      { model: 'sine', token },
      xs.map((x) => [x]),
    );
    await screenshot(page, 'browser-sdk-tflite');
    await context.close();
    expect(result.error).toBeUndefined();
    expect(result.backend).toMatchObject({
      engine: 'tfjs-tflite',
      executionProvider: 'wasm',
      probe: 'synthetic',
    });
    const model = await artifactBytes(sine, 'tflite/model.tflite');
    xs.forEach((x, i) => {
      const got = result.outputs![i]!.y!.data;
      expect(maxAbsDiff(got, tfliteNodeOutput(model, [x]))).toBeLessThan(1e-5);
      expect(Math.abs((got[0] as number) - Math.sin(x))).toBeLessThan(0.1); // it is a sine regressor
    });
  });

  it('classifies an image the user picks on the try page, like onnxruntime-node on the same pixels', async () => {
    // A 64x64 picture (the model's size, so no resampling): smooth colour waves.
    const rgba = new Uint8ClampedArray(64 * 64 * 4);
    for (let p = 0; p < 64 * 64; p++) {
      const [x, y] = [p % 64, Math.floor(p / 64)];
      rgba.set([128 + 100 * Math.sin(x / 5), 128 + 100 * Math.cos(y / 7), (x * y) % 256, 255], p * 4);
    }
    const { default: sharp } = await import('sharp');
    const png = await sharp(Buffer.from(rgba), { raw: { width: 64, height: 64, channels: 4 } })
      .png()
      .toBuffer();
    const tensor = pixelsToTensor(rgba, CNN_PREPROCESSING);
    const [expected] = topK(
      (
        await ortNodeOutputs(cnnModel(), {
          name: 'image',
          shape: tensor.shape,
          data: Array.from(tensor.data),
        })
      ).probabilities ?? [],
      CNN_LABELS,
    );

    const { context, page } = await newPage(wasmBrowser, { phone: true });
    await page.goto(`${server.url}/sdk/try.html?model=cnn&version=1.1.0`);
    await page.waitForSelector('body[data-ready]');
    await page.fill('#token', token);
    await page.setInputFiles('#file', { name: 'waves.png', mimeType: 'image/png', buffer: png });
    await page.waitForSelector('body[data-done]', { timeout: 60_000 });
    await screenshot(page, 'browser-sdk-try-page');
    const rows = await page.$$eval('#top tr', (trs) =>
      trs.map((tr) => [...tr.children].map((td) => td.textContent)),
    );
    const backend = await page.textContent('#backend');
    await context.close();
    expect(rows).toHaveLength(5);
    expect(rows[0]?.[0]).toBe(expected?.label);
    expect(Math.abs(Number(rows[0]?.[1]) - (expected?.score ?? 0))).toBeLessThan(2e-4);
    expect(backend).toMatch(/onnxruntime-web on wasm · cpu\/model.onnx/);
  });

  it('refuses an artifact whose bytes do not match the signed sha256', async () => {
    const target = file(conv, 'cpu/model-int8.onnx').sha256;
    server.tamper = (path, body) => {
      if (path !== `/api/v1/artifacts/${target}`) return undefined;
      const copy = body.slice();
      copy[copy.length - 1] = ((copy[copy.length - 1] ?? 0) + 1) % 256;
      return copy;
    };
    try {
      const { context, page } = await newPage(wasmBrowser);
      await page.goto(server.url);
      const result = await loadAndPredict(page, 'tampered artifact', { model: 'conv', token }, [convInput]);
      await screenshot(page, 'browser-sdk-sha256-mismatch');
      const cached = await page.evaluate(async () => (await caches.open('edgefleet-artifacts-v1')).keys());
      await context.close();
      expect(result.ok).toBe(false);
      expect(result.error?.code).toBe('WEB_ARTIFACT_HASH_MISMATCH');
      expect(result.error?.message).toContain(target);
      expect(cached.length).toBeLessThanOrEqual(1); // only the smoke test; never the refused bytes
    } finally {
      server.tamper = undefined;
    }
  });

  it('serves the second load from the Cache API, downloading each artifact once', async () => {
    const { context, page } = await newPage(wasmBrowser);
    await page.goto(server.url);
    const sha = file(conv, 'cpu/model-int8.onnx').sha256;
    const before = server.requests.filter((r) => r.endsWith(`/artifacts/${sha}`)).length;
    const first = await loadAndPredict(page, 'first load (cache miss)', { model: 'conv', token }, [
      convInput,
    ]);
    await page.reload();
    const second = await loadAndPredict(page, 'second load (Cache API hit)', { model: 'conv', token }, [
      convInput,
    ]);
    await screenshot(page, 'browser-sdk-cache-hit');
    await context.close();
    expect(first.backend?.cache).toBe('miss');
    expect(second.backend?.cache).toBe('hit');
    expect(server.requests.filter((r) => r.endsWith(`/artifacts/${sha}`)).length - before).toBe(1);
    expect(second.outputs).toEqual(first.outputs);
  });

  it('refuses a manifest the page does not trust', async () => {
    const stranger = publicKeyOf(await generateSigningKey());
    const { context, page } = await newPage(wasmBrowser);
    await page.goto(server.url);
    const result = await loadAndPredict(
      page,
      'untrusted signer',
      { model: 'conv', token, trustedKeys: [stranger] },
      [convInput],
    );
    await screenshot(page, 'browser-sdk-untrusted-signer');
    await context.close();
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('BUNDLE_UNTRUSTED_KEY');
  });

  it('measures load and inference time of a 1.1 M-parameter CNN on WebGPU and on WASM', async () => {
    const input = { data: seededData(3 * 64 * 64, 21), shape: [1, 3, 64, 64] };
    const runs = Array.from({ length: 11 }, () => input);
    const measure = async (browser: Browser, label: string) => {
      const { context, page } = await newPage(browser);
      await page.goto(server.url);
      const options = { model: 'cnn', token, device: label === 'WebGPU' ? 'webgpu' : 'wasm' };
      const cold = await loadAndPredict(page, `CNN on ${label}: cold load`, options, runs);
      await page.reload();
      const warm = await loadAndPredict(page, `CNN on ${label}: second load (cached)`, options, [input]);
      await screenshot(page, `browser-sdk-cnn-${label.toLowerCase()}`);
      await context.close();
      expect(cold.error).toBeUndefined();
      expect(warm.backend?.cache).toBe('hit');
      const steady = [...(cold.predict_ms ?? [])].slice(1).sort((a, b) => a - b); // the first run warms up
      const at = (q: number) => steady[Math.min(steady.length - 1, Math.floor(q * steady.length))] ?? 0;
      return {
        result: cold,
        timing: {
          executionProvider: cold.backend?.executionProvider,
          artifact: cold.backend?.artifact.file,
          load_cold_ms: Math.round(cold.load_ms ?? 0),
          load_cached_ms: Math.round(warm.load_ms ?? 0),
          fetch_ms: Math.round(cold.backend?.timings.fetch_ms ?? 0),
          session_ms: Math.round(cold.backend?.timings.session_ms ?? 0),
          probe_ms: Math.round(cold.backend?.timings.probe_ms ?? 0),
          first_predict_ms: Math.round(cold.predict_ms?.[0] ?? 0),
          predict_median_ms: Number(at(0.5).toFixed(2)),
          predict_p95_ms: Number(at(0.95).toFixed(2)),
        },
      };
    };
    const gpu = await measure(gpuBrowser, 'WebGPU');
    const wasm = await measure(wasmBrowser, 'WASM');
    expect(gpu.timing.executionProvider).toBe('webgpu');
    expect(wasm.timing.executionProvider).toBe('wasm');
    const probabilities = (r: typeof gpu.result) => r.outputs?.[0]?.probabilities?.data ?? [];
    expect(maxAbsDiff(probabilities(gpu.result), probabilities(wasm.result))).toBeLessThan(1e-4);
    const dir = join(projectRoot, 'test-results');
    await mkdir(dir, { recursive: true });
    const report = {
      model: 'CNN 3x64x64, 1.1 M parameters, fp32 (cpu/model.onnx)',
      browser: 'Debian chromium, headless, WebGPU on SwiftShader (CPU emulation)',
      note: 'wall-clock on a shared 2-core machine: compare, do not gate on them',
      webgpu: gpu.timing,
      wasm: wasm.timing,
    };
    await writeFile(join(dir, 'browser-sdk-timings.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log('browser SDK timings', JSON.stringify(report));
  });
});
