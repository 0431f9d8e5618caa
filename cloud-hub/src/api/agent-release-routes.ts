/** Agent releases (self-update, the CLI's `agent-release`): publish an archive, list, deploy, follow. */
import { targetSelector } from '@edgefleet/protocol';
import { z } from 'zod';
import { deployAgentRelease } from '../agent-releases/deploy.ts';
import { MANIFEST_HEADER, publishAgentRelease, SIGNATURE_HEADER } from '../agent-releases/publish.ts';
import { principalName } from '../auth/principal.ts';
import type { HubContext } from '../context.ts';
import { notFound } from '../errors.ts';
import type { AgentReleaseRecord } from '../store/agent-releases.ts';
import { type ApiRouter, param, uploadLimit } from './router.ts';

export const deployAgentReleaseRequest = z.object({ target: targetSelector }).strict();

/** The public view of a release: no manifest or signature text (devices get those in desired.agent). */
function releaseView(r: AgentReleaseRecord) {
  return {
    version: r.version,
    arch: r.arch,
    sha256: r.sha256,
    sizeBytes: r.sizeBytes,
    createdAt: r.createdAt,
    createdBy: r.createdBy,
  };
}

export function agentReleaseRoutes(router: ApiRouter, ctx: HubContext): void {
  // Same ceiling as model uploads. Only on PUT: the deploy route shares this path shape.
  router.app.on('PUT', '/agent-releases/:version/:arch', uploadLimit(ctx));
  router.define(
    {
      method: 'put',
      path: '/agent-releases/:version/:arch',
      access: 'write',
      summary: `Publish an agent release: body is the archive, ${MANIFEST_HEADER} and ${SIGNATURE_HEADER} the base64 of its signed release manifest and signature`,
      tag: 'agent-releases',
      rawBody: 'application/octet-stream',
    },
    async (c, { principal }) => {
      const { release, created } = await publishAgentRelease(ctx, {
        version: param(c, 'version'),
        arch: param(c, 'arch'),
        manifestHeader: c.req.header(MANIFEST_HEADER),
        signatureHeader: c.req.header(SIGNATURE_HEADER),
        bytes: new Uint8Array(await c.req.arrayBuffer()),
        actor: principalName(principal),
      });
      return c.json(releaseView(release), created ? 201 : 200);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/agent-releases',
      access: 'read',
      summary: 'List agent releases, newest first',
      tag: 'agent-releases',
    },
    async (c) => {
      const releases = await ctx.store.agentReleases.list();
      return c.json({
        releases: releases.map((r) => ({
          version: r.version,
          arch: r.arch,
          sha256: r.sha256,
          sizeBytes: r.sizeBytes,
          createdAt: r.createdAt,
        })),
      });
    },
  );
  router.define(
    {
      method: 'post',
      path: '/agent-releases/:version/deploy',
      access: 'write',
      summary: 'Deploy an agent release to the devices a target selects (each gets the archive for its arch)',
      tag: 'agent-releases',
      body: deployAgentReleaseRequest,
    },
    async (c, { body, principal }) => {
      const deployment = await deployAgentRelease(ctx, {
        version: param(c, 'version'),
        target: body.target,
        actor: principalName(principal),
      });
      return c.json({ deploymentId: deployment.deploymentId, devices: deployment.devices }, 201);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/agent-releases/:version',
      access: 'read',
      summary: "An agent release's arches and how each device it is deployed to is getting on",
      tag: 'agent-releases',
    },
    async (c) => {
      const version = param(c, 'version');
      const releases = await ctx.store.agentReleases.listVersion(version);
      if (releases.length === 0) throw notFound(`agent release ${version}`);
      const devices = (await ctx.store.devices.list())
        .filter((d) => d.desired?.agent?.version === version)
        .map((d) => ({
          deviceId: d.id,
          name: d.name,
          arch: d.facts.arch,
          deploymentId: d.desired?.agent?.deploymentId ?? null,
          runningVersion: d.reported?.agentVersion ?? d.agentVersion,
          update: d.reported?.agentUpdate ?? null,
        }));
      return c.json({ version, releases: releases.map(releaseView), devices });
    },
  );
}
