/**
 * A thin view over protobuf-es ONNX graphs for the passes: attributes, producers and consumers,
 * subgraph traversal, unique names, node insertion and Constant hoisting.
 */
import { create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AT,
  type AttributeProto,
  AttributeProtoSchema,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  NodeProtoSchema,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { floatTensor, int64Tensor } from './tensor.ts';

export type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto };

export const getAttr = (node: NodeProto, name: string): AttributeProto | undefined =>
  node.attribute.find((a) => a.name === name);

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? a.ints.map(Number) : undefined;
}

export function removeAttr(node: NodeProto, name: string): void {
  node.attribute = node.attribute.filter((a) => a.name !== name);
}

/** An attribute value for `makeNode`: numbers become INT or FLOAT by `float`, arrays INTS. */
export type AttrInput = number | { float: number } | number[] | string | TensorProto;

function attribute(name: string, value: AttrInput): AttributeProto {
  if (typeof value === 'string')
    return create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(value) });
  if (Array.isArray(value))
    return create(AttributeProtoSchema, { name, type: AT.INTS, ints: value.map((v) => BigInt(v)) });
  if (typeof value === 'number')
    return create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(value) });
  if ('float' in value) return create(AttributeProtoSchema, { name, type: AT.FLOAT, f: value.float });
  return create(AttributeProtoSchema, { name, type: AT.TENSOR, t: value });
}

export function makeNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  options: { name?: string; domain?: string; attrs?: Record<string, AttrInput> } = {},
): NodeProto {
  return create(NodeProtoSchema, {
    opType,
    input: inputs,
    output: outputs,
    name: options.name ?? '',
    domain: options.domain ?? '',
    attribute: Object.entries(options.attrs ?? {}).map(([k, v]) => attribute(k, v)),
  });
}

export function setAttr(node: NodeProto, name: string, value: AttrInput): void {
  removeAttr(node, name);
  node.attribute.push(attribute(name, value));
}

/** Graphs held in a node's attributes (If branches, Loop/Scan bodies). */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    out.push(...a.graphs);
  }
  return out;
}

/** Visit a graph and every graph nested in it, outermost first. */
export function visitGraphs(graph: GraphProto, fn: (g: GraphProto, depth: number) => void, depth = 0): void {
  fn(graph, depth);
  for (const n of graph.node) for (const g of subgraphsOf(n)) visitGraphs(g, fn, depth + 1);
}

/** Every value name a node reads, including outer-scope names its subgraphs read. */
export function readsOf(node: NodeProto): string[] {
  const names = node.input.filter((n) => n !== '');
  for (const g of subgraphsOf(node)) {
    const local = new Set([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
    for (const inner of g.node) {
      for (const n of readsOf(inner)) if (!local.has(n)) names.push(n);
      for (const o of inner.output) local.add(o);
    }
  }
  return names;
}

export function consumersOf(graph: GraphProto): Map<string, NodeProto[]> {
  const map = new Map<string, NodeProto[]>();
  for (const n of graph.node)
    for (const name of new Set(readsOf(n))) {
      const list = map.get(name) ?? [];
      list.push(n);
      map.set(name, list);
    }
  return map;
}

export function producersOf(graph: GraphProto): Map<string, NodeProto> {
  const map = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) map.set(o, n);
  return map;
}

/** Fresh value/node names that collide with nothing anywhere in the model. */
export class NameScope {
  private readonly used = new Set<string>();
  constructor(model: ModelProto) {
    if (model.graph)
      visitGraphs(model.graph, (g) => {
        for (const v of [...g.input, ...g.output, ...g.valueInfo]) this.used.add(v.name);
        for (const t of g.initializer) this.used.add(t.name);
        for (const n of g.node) {
          this.used.add(n.name);
          for (const x of [...n.input, ...n.output]) this.used.add(x);
        }
      });
  }
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

/** Rename every read of `from` to `to` in these nodes (not inside their subgraphs). */
export function renameInputs(nodes: readonly NodeProto[], from: string, to: string): void {
  for (const n of nodes) n.input = n.input.map((x) => (x === from ? to : x));
}

/** The opset version of a domain ('' = ai.onnx), or undefined when not imported. */
export function opsetOf(model: ModelProto, domain = ''): number | undefined {
  const o = model.opsetImport.find((x) => x.domain === domain || (domain === '' && x.domain === 'ai.onnx'));
  return o ? Number(o.version) : undefined;
}

/**
 * Move `Constant` nodes that hold a tensor into the graph's initializers, so weights exported as
 * Constants (common in PyTorch exports) are quantized and converted like any other weight.
 * Returns how many were hoisted. Works on subgraphs too (their initializers are local).
 */
export function hoistConstants(graph: GraphProto): number {
  let hoisted = 0;
  const keep: NodeProto[] = [];
  for (const n of graph.node) {
    const out = n.output[0];
    if (n.opType !== 'Constant' || n.domain !== '' || !out || n.attribute.length !== 1) {
      keep.push(n);
      continue;
    }
    const a = n.attribute[0] as AttributeProto;
    let t: TensorProto | undefined;
    if (a.name === 'value' && a.t) {
      t = a.t;
      t.name = out;
    } else if (a.name === 'value_float') t = floatTensor(out, [], Float32Array.of(a.f));
    else if (a.name === 'value_floats') t = floatTensor(out, [a.floats.length], Float32Array.from(a.floats));
    else if (a.name === 'value_int') {
      t = int64Tensor(out, [Number(a.i)]);
      t.dims = [];
    } else if (a.name === 'value_ints') t = int64Tensor(out, a.ints.map(Number));
    if (!t) {
      keep.push(n);
      continue;
    }
    graph.initializer.push(t);
    hoisted++;
  }
  graph.node = keep;
  return hoisted;
}

/** Remove graph inputs that shadow initializers (old IR): they become constants ORT can fold. */
export function unshadowInitializers(graph: GraphProto): void {
  const inits = new Set(graph.initializer.map((t) => t.name));
  graph.input = graph.input.filter((v) => !inits.has(v.name));
}

/** Sort nodes so every node comes after the producers of what it reads (Kahn, stable). */
export function topoSort(graph: GraphProto): void {
  const produced = producersOf(graph);
  const done = new Set<NodeProto>();
  const order: NodeProto[] = [];
  const visiting = new Set<NodeProto>();
  const visit = (n: NodeProto) => {
    if (done.has(n) || visiting.has(n)) return;
    visiting.add(n);
    for (const x of readsOf(n)) {
      const p = produced.get(x);
      if (p && p !== n) visit(p);
    }
    visiting.delete(n);
    done.add(n);
    order.push(n);
  };
  for (const n of graph.node) visit(n);
  graph.node = order;
}

/** Drop nodes whose outputs nobody reads and initializers nobody uses (after rewrites). */
export function pruneUnused(graph: GraphProto): void {
  const outputs = new Set(graph.output.map((o) => o.name));
  let changed = true;
  while (changed) {
    changed = false;
    const read = new Set<string>(outputs);
    for (const n of graph.node) for (const x of readsOf(n)) read.add(x);
    const before = graph.node.length;
    graph.node = graph.node.filter((n) => n.output.some((o) => o && read.has(o)));
    if (graph.node.length !== before) changed = true;
    graph.initializer = graph.initializer.filter((t) => read.has(t.name));
  }
}
