/** Rollouts (the CLI's `deploy` and `rollouts`): start, inspect, and operator actions with who and why. */
import { schemas, targetSelector } from '@edgefleet/protocol';
import { z } from 'zod';
import { principalName } from '../auth/principal.ts';
import type { HubContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { actOnRollout, startRollout } from '../rollouts/engine.ts';
import type { RolloutDeviceRecord, RolloutRecord } from '../store/rollouts.ts';
import { type ApiRouter, param } from './router.ts';

const batchSpec = z
  .string()
  .regex(/^(\d+|\d+(\.\d+)?%)$/, 'a device count like "1" or a percentage like "10%"');

export const startRolloutRequest = z
  .object({
    model: schemas.name,
    version: schemas.semver,
    target: targetSelector,
    batches: z.array(batchSpec).min(1).max(20).optional(),
    successThresholdPct: z.number().min(0).max(100).optional(),
    maxFailures: batchSpec.optional(),
    onFailure: z.enum(['pause', 'rollback']).optional(),
    shadowSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .optional(),
    soakSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .optional(),
    deviceTimeoutSeconds: z
      .number()
      .int()
      .min(5)
      .max(7 * 86_400)
      .optional(),
    maxPerMinute: z.number().int().min(0).max(1_000_000).optional(),
    maxConcurrentPerSite: z.number().int().min(0).max(1_000_000).optional(),
    requireApproval: z.boolean().optional(),
    gates: z
      .object({
        errorRateRatio: z.number().min(1).max(1000).optional(),
        maxErrorRatePct: z.number().min(0).max(100).optional(),
        latencyP95Ratio: z.number().min(1).max(1000).optional(),
        drift: z.enum(['warning', 'drift']).optional(),
        minShadowAgreementPct: z.number().min(0).max(100).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const rolloutAction = z.object({ reason: z.string().max(500).optional() }).strict();

function summarize(devices: RolloutDeviceRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const d of devices) counts[d.state] = (counts[d.state] ?? 0) + 1;
  return counts;
}

export async function rolloutView(ctx: HubContext, rollout: RolloutRecord) {
  const devices = await ctx.store.rollouts.devices(rollout.id);
  return { ...rollout, counts: summarize(devices), total: devices.length, devices };
}

export function rolloutRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'post',
      path: '/rollouts',
      access: 'write',
      summary: 'Start a rollout of a model version',
      tag: 'rollouts',
      body: startRolloutRequest,
    },
    async (c, { body, principal }) => {
      const { model, version, target, ...plan } = body;
      const rollout = await startRollout(ctx, {
        model,
        version,
        selector: target,
        plan: Object.fromEntries(Object.entries(plan).filter(([, v]) => v !== undefined)),
        actor: principalName(principal),
      });
      return c.json(await rolloutView(ctx, rollout), 201);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/rollouts',
      access: 'read',
      summary: 'List rollouts, newest first',
      tag: 'rollouts',
    },
    async (c) => {
      const model = c.req.query('model');
      const rollouts = await ctx.store.rollouts.list(model ? { model } : {});
      const views = await Promise.all(
        rollouts.map(async (r) => ({ ...r, counts: summarize(await ctx.store.rollouts.devices(r.id)) })),
      );
      return c.json({ rollouts: views });
    },
  );
  router.define(
    {
      method: 'get',
      path: '/rollouts/:id',
      access: 'read',
      summary: 'A rollout with per-device states, gate readings and its history',
      tag: 'rollouts',
    },
    async (c) => {
      const rollout = await ctx.store.rollouts.get(param(c, 'id'));
      if (!rollout) throw notFound(`rollout ${param(c, 'id')}`);
      return c.json({
        ...(await rolloutView(ctx, rollout)),
        events: await ctx.store.events.list({ subject: rollout.id }),
      });
    },
  );
  for (const action of ['pause', 'resume', 'approve', 'cancel', 'rollback'] as const) {
    router.define(
      {
        method: 'post',
        path: `/rollouts/:id/${action}`,
        access: 'write',
        summary: `${action} a rollout (optional {reason}); recorded with who and why`,
        tag: 'rollouts',
        body: rolloutAction,
      },
      async (c, { body, principal }) =>
        c.json(
          await rolloutView(
            ctx,
            await actOnRollout(ctx, param(c, 'id'), action, principalName(principal), body.reason),
          ),
        ),
    );
  }
}
