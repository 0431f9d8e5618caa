import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { type Command, optionalString, requireString, UsageError } from '../command.ts';
import { hubClient, hubOptions } from '../hub-client.ts';
import { formatBytes, formatTable } from '../table.ts';

interface VersionView {
  model: string;
  version: string;
  signedBy: string;
  sourceFormat: string;
  files: { file: string; sha256: string; sizeBytes: number; kind: string }[];
  manifest: { artifacts: { file: string; target: string; precision: string; runtime: string }[] };
}

export const publishCommand: Command = {
  name: 'publish',
  summary: 'Register a model version from an .onnx, a signed .efb, or a .tflite (with its _edgetpu twin)',
  usage: 'publish IN.onnx|IN.efb|IN.tflite --model NAME --version SEMVER [--edgetpu IN_edgetpu.tflite]',
  options: {
    ...hubOptions(),
    model: { type: 'string' },
    version: { type: 'string' },
    edgetpu: { type: 'string' },
  },
  async run(ctx) {
    const [file] = ctx.positionals;
    if (!file) throw new UsageError('publish needs the model file');
    const model = requireString(ctx, 'model');
    const version = requireString(ctx, 'version');
    const edgetpu = optionalString(ctx, 'edgetpu');
    const client = hubClient(ctx);
    const bytes = await readFile(file);
    ctx.progress(`uploading ${basename(file)} (${formatBytes(bytes.byteLength)})…`);
    let view: VersionView;
    const path = `/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}`;
    if (edgetpu) {
      const form = new FormData();
      form.set('model', new Blob([bytes]), basename(file));
      form.set('edgetpu', new Blob([await readFile(edgetpu)]), basename(edgetpu));
      view = await client.request<VersionView>('PUT', path, undefined, { rawBody: form });
    } else {
      view = await client.request<VersionView>('PUT', path, undefined, {
        rawBody: bytes,
        headers: { 'content-type': 'application/octet-stream' },
      });
    }
    ctx.progress('');
    ctx.printJson(view);
    ctx.print(
      `published ${view.model}@${view.version} (from ${view.sourceFormat}, signed by key ${view.signedBy})`,
    );
    ctx.print(
      formatTable(view.manifest.artifacts, [
        { header: 'ARTIFACT', value: (a) => a.file },
        { header: 'TARGET', value: (a) => a.target },
        { header: 'PRECISION', value: (a) => a.precision },
        { header: 'RUNTIME', value: (a) => a.runtime },
        {
          header: 'SIZE',
          value: (a) => formatBytes(view.files.find((f) => f.file === a.file)?.sizeBytes),
          align: 'right',
        },
      ]),
    );
    return 0;
  },
};
