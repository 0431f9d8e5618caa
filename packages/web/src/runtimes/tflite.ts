/**
 * TFLite through @tensorflow/tfjs-tflite's WASM interpreter (`tfweb.TFLiteWebModelRunner`), used
 * directly: tensors are plain typed arrays copied into the interpreter's memory, so no tfjs-core is
 * needed. The client object is handed in (`loadTflite`); the browser entry loads it from the hub.
 */
import { WebError } from '../errors.ts';
import type { Tensor, TypedArray } from '../tensors.ts';
import type { Engine } from './engine.ts';

/** The part of tfjs-tflite's `tfweb` client the SDK uses. */
export interface TfliteClient {
  TFLiteWebModelRunner: {
    create(model: ArrayBuffer, options: { numThreads?: number }): Promise<TfliteRunner>;
  };
}
interface TfliteTensorInfo {
  id: number;
  dataType: string;
  name: string;
  /** Comma-separated dimensions, e.g. "1,28,28". */
  shape: string;
  data(): TypedArray;
}
interface TfliteRunner {
  getInputs(): TfliteTensorInfo[];
  getOutputs(): TfliteTensorInfo[];
  infer(): boolean;
  cleanUp(): void;
}

export type LoadTflite = () => Promise<TfliteClient>;

const DTYPES: Record<string, Tensor['dtype']> = {
  float32: 'float32',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  int32: 'int32',
  bool: 'bool',
};

/** An Engine backed by tfjs-tflite (WASM, XNNPACK). */
export function tfliteEngine(loadTflite: LoadTflite, options: { numThreads?: number } = {}): Engine {
  return {
    name: 'tfjs-tflite',
    async open({ bytes, inputs: inputSpecs, outputs: outputSpecs }) {
      const client = await loadTflite();
      const buffer = bytes.slice().buffer as ArrayBuffer;
      const runner = await client.TFLiteWebModelRunner.create(buffer, options);
      const inputs = runner.getInputs();
      const outputs = runner.getOutputs();
      if (inputs.length !== inputSpecs.length) {
        runner.cleanUp();
        throw new WebError(
          'WEB_SESSION_FAILED',
          `the TFLite file has ${inputs.length} inputs, its manifest names ${inputSpecs.length}`,
        );
      }
      // The manifest's names win; TFLite tensor names ("serving_default_x:0") are an artefact of export.
      const outName = (o: TfliteTensorInfo, i: number) =>
        outputs.length === outputSpecs.length ? (outputSpecs[i]?.name ?? o.name) : o.name;
      let disposed = false;
      return {
        async run(feeds) {
          inputs.forEach((info, i) => {
            const spec = inputSpecs[i];
            const t = (spec && feeds[spec.name]) ?? feeds[info.name];
            if (!t) throw new WebError('WEB_INPUT_INVALID', `no tensor for TFLite input ${info.name}`);
            const target = info.data();
            if (target.length !== t.data.length)
              throw new WebError(
                'WEB_INPUT_INVALID',
                `input "${spec?.name ?? info.name}" has ${t.data.length} values, the TFLite file wants ${target.length} ([${info.shape}])`,
                { details: { field: spec?.name ?? info.name } },
              );
            (target as Float32Array).set(t.data as Float32Array);
          });
          if (!runner.infer())
            throw new WebError('WEB_RUN_FAILED', 'the TFLite interpreter reported a failed inference');
          const out: Record<string, Tensor> = {};
          outputs.forEach((o, i) => {
            const shape = o.shape === '' ? [] : o.shape.split(',').map(Number);
            // data() views interpreter memory that the next infer() overwrites: copy it out.
            out[outName(o, i)] = { dtype: DTYPES[o.dataType] ?? 'float32', shape, data: o.data().slice() };
          });
          return out;
        },
        async dispose() {
          if (!disposed) runner.cleanUp();
          disposed = true;
        },
      };
    },
  };
}
