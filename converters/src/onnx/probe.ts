/**
 * Types and shapes of every value of the main graph, learned from onnxruntime itself: the model is
 * loaded with all node outputs exposed, and ORT's own type inference answers. This avoids writing
 * (and keeping current) shape inference for every ONNX operator.
 */
import type { ModelProto } from 'onnx-buf';
import { exposeTensors } from '../quant/calibrate.ts';
import { openSession } from './runtime.ts';
import { onnxDtypes } from './summary.ts';

export interface ValueType {
  /** 'float32', 'int64', … or undefined when unknown. */
  dtype: string | undefined;
  shape: (number | string)[] | undefined;
}

/** name → type for graph inputs, initializers and every main-graph node output. */
export async function probeTypes(model: ModelProto): Promise<Map<string, ValueType>> {
  const graph = model.graph;
  const types = new Map<string, ValueType>();
  if (!graph) return types;
  for (const t of graph.initializer)
    types.set(t.name, { dtype: onnxDtypes[t.dataType], shape: t.dims.map(Number) });
  for (const v of graph.input) {
    if (v.type?.value.case !== 'tensorType') continue;
    const tt = v.type.value.value;
    types.set(v.name, {
      dtype: onnxDtypes[tt.elemType],
      shape: tt.shape?.dim.map((d) =>
        d.value.case === 'dimValue' ? Number(d.value.value) : String(d.value.value ?? '?'),
      ),
    });
  }
  const names = [...new Set(graph.node.flatMap((n) => n.output.filter((o) => o !== '')))];
  const session = await openSession(exposeTensors(model, names), { optimization: 'disabled' });
  try {
    for (const o of session.outputs) types.set(o.name, { dtype: o.type, shape: o.shape });
  } finally {
    await session.release();
  }
  return types;
}
