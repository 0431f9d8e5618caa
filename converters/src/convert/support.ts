/**
 * Per-target op support, checked before any conversion work so the user learns at once which ops
 * stand in the way. CPU runs onnxruntime's full CPU build (ai.onnx, ai.onnx.ml, com.microsoft);
 * WebGPU runs onnxruntime-web, whose build has no ai.onnx.ml operators and no custom domains.
 */
import type { OnnxSummary } from '../onnx/summary.ts';

export type OnnxTarget = 'cpu' | 'webgpu';

const DOMAINS: Record<OnnxTarget, Set<string>> = {
  cpu: new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft']),
  webgpu: new Set(['', 'ai.onnx', 'com.microsoft']),
};

export interface SupportCheck {
  target: string;
  ok: boolean;
  /** Unsupported ops as "domain:Op (×n)". */
  unsupported: string[];
  message?: string;
}

/** Can `target` run this model's ops (and tensor I/O)? */
export function checkTargetSupport(summary: OnnxSummary, target: OnnxTarget): SupportCheck {
  const bad = summary.opTypes.filter((o) => !DOMAINS[target].has(o.domain));
  const unsupported = bad.map((o) => `${o.domain || 'ai.onnx'}:${o.opType} (×${o.count})`);
  const strings = [...summary.inputs, ...summary.outputs]
    .filter((t) => t.dtype === 'string')
    .map((t) => t.name);
  if (target === 'webgpu' && strings.length) unsupported.push(...strings.map((s) => `string tensor "${s}"`));
  if (unsupported.length === 0) return { target, ok: true, unsupported };
  const why =
    target === 'webgpu'
      ? 'onnxruntime-web has no kernels for them'
      : 'onnxruntime has no kernels for those domains';
  return {
    target,
    ok: false,
    unsupported,
    message: `${target} cannot run ${unsupported.join(', ')}: ${why}${target === 'webgpu' ? '; use --target cpu' : ''}`,
  };
}
