/**
 * The local inference API (KServe Open Inference Protocol v2), on 127.0.0.1 by default:
 * health, model metadata, tensor inference, and an image route that applies the bundle's
 * preprocessing. Errors use KServe's `{error: "..."}` body.
 */
import { EDGEFLEET_VERSION } from '@edgefleet/protocol';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AgentError } from '../errors.ts';
import { imageToTensor, topK } from './image.ts';
import { decodeInputs, encodeOutputs, kserveDatatype } from './kserve.ts';
import type { LoadedModels } from './loaded-models.ts';

export function createInferenceApp(models: LoadedModels): Hono {
  const app = new Hono();
  app.onError((error, c) => {
    const status = error instanceof AgentError && error.code === 'BAD_INPUT' ? 400 : 500;
    return c.json({ error: error.message }, status);
  });
  app.use(
    '/v2/models/*',
    bodyLimit({
      maxSize: 64 * 1024 * 1024,
      onError: (c) => c.json({ error: 'request body over 64 MB' }, 413),
    }),
  );

  const find = (name: string) => {
    const model = models.get(name);
    if (!model)
      throw Object.assign(new AgentError('BAD_INPUT', `model "${name}" is not loaded here`), { status: 404 });
    return model;
  };
  const notLoaded = (c: { json: (b: unknown, s: 404) => Response }, name: string) =>
    c.json({ error: `model "${name}" is not loaded here` }, 404);

  app.get('/v2', (c) =>
    c.json({ name: 'edgefleet-agent', version: EDGEFLEET_VERSION, extensions: ['edgefleet-image'] }),
  );
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) =>
    models.list().length > 0 ? c.json({ ready: true }) : c.json({ ready: false }, 503),
  );
  app.get('/v2/models/:name', (c) => {
    const model = models.get(c.req.param('name'));
    if (!model) return notLoaded(c, c.req.param('name'));
    const tensor = (t: {
      name: string;
      shape: (number | string)[];
      dtype: Parameters<typeof kserveDatatype>[0];
    }) => ({
      name: t.name,
      datatype: kserveDatatype(t.dtype),
      shape: t.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1)),
    });
    return c.json({
      name: model.slot,
      versions: [model.entry.version],
      platform: model.session.backend,
      inputs: model.session.inputs.map(tensor),
      outputs: model.session.outputs.map(tensor),
      parameters: {
        artifact: model.entry.artifact.file,
        precision: model.entry.precision,
        sha256: model.entry.sha256,
      },
    });
  });
  app.get('/v2/models/:name/ready', (c) =>
    models.get(c.req.param('name'))
      ? c.json({ name: c.req.param('name'), ready: true })
      : notLoaded(c, c.req.param('name')),
  );

  app.post('/v2/models/:name/infer', async (c) => {
    const name = c.req.param('name');
    if (!models.get(name)) return notLoaded(c, name);
    const model = find(name);
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: 'request body is not valid JSON' }, 400);
    }
    const inputs = decodeInputs(body, model.session.inputs);
    const wanted = (body as { outputs?: { name: string }[] }).outputs?.map((o) => o.name);
    const result = await models.infer(name, inputs);
    return c.json({
      model_name: name,
      model_version: result.model.entry.version,
      id: (body as { id?: string }).id,
      outputs: encodeOutputs(result.outputs, wanted),
    });
  });

  app.post('/v2/models/:name/infer/image', async (c) => {
    const name = c.req.param('name');
    if (!models.get(name)) return notLoaded(c, name);
    const model = find(name);
    const pre = model.manifest.preprocessing;
    if (!pre)
      return c.json(
        { error: `model "${name}" has no image preprocessing in its bundle; use /infer with tensors` },
        400,
      );
    const input = model.session.inputs[0];
    if (!input) return c.json({ error: 'model has no inputs' }, 500);
    const tensor = await imageToTensor(new Uint8Array(await c.req.arrayBuffer()), pre);
    const result = await models.infer(name, { [input.name]: tensor });
    const outputs = encodeOutputs(result.outputs);
    const first = Object.values(result.outputs)[0];
    const classification =
      model.manifest.postprocessing?.kind === 'classification' || model.manifest.labels !== undefined;
    return c.json({
      model_name: name,
      model_version: result.model.entry.version,
      outputs,
      ...(classification && first ? { top: topK(first.data as Float32Array, model.manifest.labels) } : {}),
    });
  });
  return app;
}
