/**
 * What this browser can run: a WebGPU adapter (and its features, `shader-f16` above all), the Cache
 * API, and cross-origin isolation (WASM threads). Detected once per load; tests and Node pass their
 * own `Capabilities` instead.
 */

/** The WebGPU facts that decide artifact choice and get reported to the hub. */
export interface WebGpuInfo {
  available: boolean;
  /** Why WebGPU is not available (no `navigator.gpu`, no adapter, or disabled by the caller). */
  reason?: string;
  features: string[];
  adapter?: { vendor: string; architecture: string; description: string; isFallbackAdapter: boolean };
}

export interface Capabilities {
  webgpu: WebGpuInfo;
  cacheApi: boolean;
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  /** `navigator.deviceMemory` in GB (Chromium only), when known. */
  deviceMemoryGb?: number;
  userAgent: string;
}

/** The small part of the WebGPU API we touch (lib.dom has no WebGPU types yet). */
interface GpuAdapterLike {
  features: { has(name: string): boolean; forEach(fn: (name: string) => void): void };
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapterLike | null>;
}

/** Ask the browser for a WebGPU adapter; never throws. */
export async function detectWebGpu(powerPreference?: 'high-performance' | 'low-power'): Promise<WebGpuInfo> {
  const gpu = (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu;
  if (!gpu)
    return { available: false, reason: 'navigator.gpu is missing (no WebGPU in this browser)', features: [] };
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter(powerPreference ? { powerPreference } : undefined);
  } catch (error) {
    return { available: false, reason: `requestAdapter failed: ${String(error)}`, features: [] };
  }
  if (!adapter) return { available: false, reason: 'requestAdapter returned no adapter', features: [] };
  const features: string[] = [];
  adapter.features.forEach((f) => {
    features.push(f);
  });
  const info = adapter.info ?? {};
  return {
    available: true,
    features: features.sort(),
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      description: info.description ?? '',
      isFallbackAdapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false,
    },
  };
}

/** Everything the SDK needs to know about the browser it runs in. */
export async function detectCapabilities(
  options: { webgpu?: boolean; powerPreference?: 'high-performance' | 'low-power' } = {},
): Promise<Capabilities> {
  const nav = globalThis.navigator as (Navigator & { deviceMemory?: number }) | undefined;
  const webgpu =
    options.webgpu === false
      ? { available: false, reason: 'WebGPU not requested (device: "wasm")', features: [] }
      : await detectWebGpu(options.powerPreference);
  return {
    webgpu,
    cacheApi: typeof globalThis.caches !== 'undefined',
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: nav?.hardwareConcurrency ?? 1,
    ...(typeof nav?.deviceMemory === 'number' ? { deviceMemoryGb: nav.deviceMemory } : {}),
    userAgent: nav?.userAgent ?? 'unknown',
  };
}

/**
 * The device profile a browser enrolls with: the WebGPU one when it has a hardware adapter (a
 * software fallback adapter runs models slower than WASM, so such a browser counts as WASM).
 */
export function browserProfile(caps: Capabilities): 'browser-webgpu' | 'browser-wasm' {
  return caps.webgpu.available && caps.webgpu.adapter?.isFallbackAdapter !== true
    ? 'browser-webgpu'
    : 'browser-wasm';
}
