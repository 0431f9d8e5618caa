/**
 * The local inference API (KServe Open Inference Protocol v2), on 127.0.0.1 by default:
 * health, model metadata, tensor inference (JSON or the binary tensor data extension), and an image
 * route that applies the bundle's preprocessing. Errors use KServe's `{error: "..."}` body.
 *
 * Served straight on `node:http` (a body read into one Buffer, the answer written with one `end`),
 * not through a web framework: the tensor route is the hot path, and a web Request/Response round
 * trip cost more than a small model's inference; and the web fetch stack (undici) that any web
 * Request loads adds about 9 MB to an agent that should idle small on a 1 GB board.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { EDGEFLEET_VERSION } from '@edgefleet/protocol';
import { AgentError } from '../errors.ts';
import { imageToTensor, topK } from './image.ts';
import {
  decodeInputs,
  encodeOutputs,
  encodeResponse,
  INFERENCE_HEADER,
  kserveDatatype,
  outputRequest,
  splitBody,
} from './kserve.ts';
import type { LoadedModels } from './loaded-models.ts';

/** The largest request body either route accepts, unless told otherwise. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface InferenceServerOptions {
  /** Bodies over this many bytes get a 413 (default 64 MB). */
  maxBodyBytes?: number;
}

const tooLarge = (limit: number) =>
  `request body over ${limit % 1048576 === 0 ? `${limit / 1048576} MB` : `${limit} bytes`}`;

/** The inference API's HTTP server. */
export function createInferenceServer(models: LoadedModels, options: InferenceServerOptions = {}): Server {
  const limit = options.maxBodyBytes ?? MAX_BODY_BYTES;
  return createServer((req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (req.method === 'POST') {
      const infer = INFER_PATH.exec(path);
      if (infer) return void serveInfer(models, limit, req, res, infer[1] as string, infer[2]);
      const image = IMAGE_PATH.exec(path);
      if (image) return void serveImage(models, limit, req, res, decodePart(image[1] as string));
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      const answer = metadata(models, path);
      if (answer) return send(res, answer.status ?? 200, answer.body);
    }
    send(res, 404, { error: `no route for ${req.method} ${path}` });
  });
}

const INFER_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/;

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': text.length,
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** The whole body as one Buffer, or null when it is over `limit` bytes (declared or sent). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (!over) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.once('error', reject);
  });
}

const decodePart = (part: string) => {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
};

async function serveInfer(
  models: LoadedModels,
  limit: number,
  req: IncomingMessage,
  res: ServerResponse,
  rawName: string,
  rawVersion: string | undefined,
): Promise<void> {
  try {
    const body = await readBody(req, limit);
    // Answer at once and drop the connection rather than read the rest of an oversized body.
    if (!body) return send(res, 413, { error: tooLarge(limit) }, true);
    const name = decodePart(rawName);
    const model = models.get(name);
    if (!model) return send(res, 404, { error: `model "${name}" is not loaded here` });
    if (rawVersion !== undefined) {
      const version = decodePart(rawVersion);
      if (version !== model.entry.version)
        return send(res, 404, {
          error: `model "${name}" version "${version}" is not loaded here (it serves ${model.entry.version})`,
        });
    }
    const { request, binary } = splitBody(body, req.headers[INFERENCE_HEADER]);
    const inputs = decodeInputs(request, model.session.inputs, binary);
    const selection = outputRequest(request);
    const result = await models.infer(name, inputs);
    const answer = encodeResponse(
      {
        model_name: name,
        model_version: result.model.entry.version,
        id: (request as { id?: unknown } | null)?.id,
      },
      result.outputs,
      selection,
    );
    res.writeHead(
      200,
      answer.headerLength === undefined
        ? { 'content-type': 'application/json', 'content-length': answer.body.length }
        : {
            'content-type': 'application/octet-stream',
            [INFERENCE_HEADER]: answer.headerLength,
            'content-length': answer.body.length,
          },
    );
    res.end(answer.body);
  } catch (error) {
    const status = error instanceof AgentError && error.code === 'BAD_INPUT' ? 400 : 500;
    send(res, status, { error: (error as Error).message });
  }
}

const IMAGE_PATH = /^\/v2\/models\/([^/]+)\/infer\/image$/;
const MODEL_PATH = /^\/v2\/models\/([^/]+)(\/ready)?$/;

const notLoaded = (name: string) => ({ status: 404, body: { error: `model "${name}" is not loaded here` } });

/** The GET routes: server and model metadata, health. Undefined when no route matches. */
function metadata(models: LoadedModels, path: string): { status?: number; body: unknown } | undefined {
  if (path === '/v2')
    return {
      body: {
        name: 'edgefleet-agent',
        version: EDGEFLEET_VERSION,
        extensions: ['binary_tensor_data', 'edgefleet-image'],
      },
    };
  if (path === '/v2/health/live') return { body: { live: true } };
  if (path === '/v2/health/ready')
    return models.list().length > 0 ? { body: { ready: true } } : { status: 503, body: { ready: false } };
  const match = MODEL_PATH.exec(path);
  if (!match) return undefined;
  const name = decodePart(match[1] as string);
  const model = models.get(name);
  if (!model) return notLoaded(name);
  if (match[2]) return { body: { name, ready: true } };
  const tensor = (t: {
    name: string;
    shape: (number | string)[];
    dtype: Parameters<typeof kserveDatatype>[0];
  }) => ({
    name: t.name,
    datatype: kserveDatatype(t.dtype),
    shape: t.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1)),
  });
  return {
    body: {
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
    },
  };
}

/** `POST /v2/models/{name}/infer/image`: an encoded image, laid out by the bundle's preprocessing. */
async function serveImage(
  models: LoadedModels,
  limit: number,
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
): Promise<void> {
  try {
    const body = await readBody(req, limit);
    if (!body) return send(res, 413, { error: tooLarge(limit) }, true);
    const model = models.get(name);
    if (!model) return send(res, 404, notLoaded(name).body);
    const pre = model.manifest.preprocessing;
    if (!pre)
      return send(res, 400, {
        error: `model "${name}" has no image preprocessing in its bundle; use /infer with tensors`,
      });
    const input = model.session.inputs[0];
    if (!input) return send(res, 500, { error: 'model has no inputs' });
    const tensor = await imageToTensor(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), pre);
    const result = await models.infer(name, { [input.name]: tensor });
    const first = Object.values(result.outputs)[0];
    const classification =
      model.manifest.postprocessing?.kind === 'classification' || model.manifest.labels !== undefined;
    send(res, 200, {
      model_name: name,
      model_version: result.model.entry.version,
      outputs: encodeOutputs(result.outputs),
      ...(classification && first ? { top: topK(first.data as Float32Array, model.manifest.labels) } : {}),
    });
  } catch (error) {
    const status = error instanceof AgentError && error.code === 'BAD_INPUT' ? 400 : 500;
    send(res, status, { error: (error as Error).message });
  }
}
