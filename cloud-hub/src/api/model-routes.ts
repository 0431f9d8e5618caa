/** Models and versions: upload (PUT raw bytes or multipart), details, the signed manifest, deletion. */
import { schemas } from '@edgefleet/protocol';
import { assertMayReadVersion } from '../access.ts';
import { principalName } from '../auth/principal.ts';
import type { HubContext } from '../context.ts';
import { HubError, notFound } from '../errors.ts';
import { publishVersion } from '../publishing.ts';
import type { ModelVersionRecord } from '../store/models.ts';
import { type ApiRouter, param, uploadLimit } from './router.ts';

function checkParam(kind: 'name' | 'version', value: string): string {
  const schema = kind === 'name' ? schemas.name : schemas.semver;
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new HubError(
      'VALIDATION_FAILED',
      `invalid ${kind} "${value}": ${result.error.issues[0]?.message ?? 'invalid'}`,
      { details: { field: kind } },
    );
  }
  return value;
}

/** The public view of a version: manifest parsed, files listed. */
export function versionView(v: ModelVersionRecord) {
  return {
    model: v.model,
    version: v.version,
    createdAt: v.createdAt,
    createdBy: v.createdBy,
    signedBy: v.signedBy,
    sourceFormat: v.sourceFormat,
    manifestSha256: v.manifestSha256,
    manifest: JSON.parse(v.manifestText) as Record<string, unknown>,
    files: v.files,
  };
}

export function modelRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'get',
      path: '/models',
      access: 'read',
      summary: 'List models and their versions',
      tag: 'models',
    },
    async (c) => c.json({ models: await ctx.store.models.listModels() }),
  );
  router.define(
    {
      method: 'get',
      path: '/models/:name',
      access: 'read',
      summary: 'One model and its versions',
      tag: 'models',
    },
    async (c) => {
      const model = (await ctx.store.models.listModels()).find((m) => m.name === param(c, 'name'));
      if (!model) throw notFound(`model ${param(c, 'name')}`);
      return c.json(model);
    },
  );

  router.app.use('/models/:name/versions/:version', uploadLimit(ctx));
  router.define(
    {
      method: 'put',
      path: '/models/:name/versions/:version',
      access: 'write',
      summary:
        'Publish a version: body is a signed .efb, an .onnx or a .tflite (multipart fields "model" and "edgetpu" for a Coral twin)',
      tag: 'models',
      rawBody: 'application/octet-stream',
    },
    async (c, { principal }) => {
      const model = checkParam('name', param(c, 'name'));
      const version = checkParam('version', param(c, 'version'));
      let bytes: Uint8Array;
      let edgetpu: Uint8Array | undefined;
      if ((c.req.header('content-type') ?? '').startsWith('multipart/form-data')) {
        const form = await c.req.parseBody();
        const file = form.model;
        if (!(file instanceof File))
          throw new HubError('VALIDATION_FAILED', 'multipart upload needs a "model" file field', {
            details: { field: 'model' },
          });
        bytes = new Uint8Array(await file.arrayBuffer());
        if (form.edgetpu instanceof File) edgetpu = new Uint8Array(await form.edgetpu.arrayBuffer());
      } else {
        bytes = new Uint8Array(await c.req.arrayBuffer());
      }
      if (bytes.byteLength === 0)
        throw new HubError('VALIDATION_FAILED', 'upload is empty', { details: { field: 'body' } });
      const record = await publishVersion(ctx, {
        model,
        version,
        bytes,
        ...(edgetpu ? { edgetpu } : {}),
        actor: principalName(principal),
      });
      return c.json(versionView(record), 201);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/models/:name/versions/:version',
      access: 'read',
      summary: 'A version: manifest, files, signer',
      tag: 'models',
    },
    async (c) => {
      const v = await ctx.store.models.getVersion(param(c, 'name'), param(c, 'version'));
      if (!v) throw notFound(`${param(c, 'name')}@${param(c, 'version')}`);
      return c.json(versionView(v));
    },
  );
  router.define(
    {
      method: 'get',
      path: '/models/:name/versions/:version/manifest',
      access: 'read-or-device',
      summary: 'The signed manifest: {manifest: base64 of manifest.json, signature}',
      tag: 'models',
    },
    async (c, { principal }) => {
      const [name, version] = [param(c, 'name'), param(c, 'version')];
      await assertMayReadVersion(ctx, principal, name, version);
      const v = await ctx.store.models.getVersion(name, version);
      if (!v) throw notFound(`${name}@${version}`);
      return c.json({
        manifest: Buffer.from(v.manifestText, 'utf8').toString('base64'),
        signature: JSON.parse(v.signatureText),
      });
    },
  );
  router.define(
    {
      method: 'delete',
      path: '/models/:name/versions/:version',
      access: 'write',
      summary: 'Delete a version no device is assigned',
      tag: 'models',
    },
    async (c, { principal }) => {
      const [name, version] = [param(c, 'name'), param(c, 'version')];
      const inUse = (await ctx.store.devices.list()).filter((d) =>
        Object.values(d.desired?.models ?? {}).some((m) => m.name === name && m.version === version),
      );
      if (inUse.length > 0)
        throw new HubError(
          'CONFLICT',
          `${name}@${version} is assigned to ${inUse.length} device(s); deploy another version first`,
        );
      const v = await ctx.store.models.getVersion(name, version);
      if (!v || !(await ctx.store.models.deleteVersion(name, version))) throw notFound(`${name}@${version}`);
      for (const f of v.files)
        if (!(await ctx.store.models.isFileReferenced(f.sha256))) await ctx.artifacts.delete(f.sha256);
      await ctx.store.events.add({
        kind: 'model.deleted',
        subject: `${name}@${version}`,
        actor: principalName(principal),
        message: 'version deleted',
      });
      return c.json({ model: name, version, deleted: true });
    },
  );
}
