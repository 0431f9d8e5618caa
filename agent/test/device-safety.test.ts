/**
 * What the agent refuses and undoes on its own: unsigned, tampered, expired and downgraded bundles;
 * a model whose error rate spikes after the switch; a model that crash-loops the agent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBase64, generateSigningKey, signManifest, toBase64 } from '@edgefleet/bundle';
import { buildModel, mlpModel } from '@edgefleet/converters';
import { type DesiredState, encodeMessage, topics } from '@edgefleet/protocol';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../../cloud-hub/test/helpers.ts';
import { waitFor } from '../../test/support/services.ts';
import { type RunningAgent, startAgent } from '../src/index.ts';
import { ProbationGuard } from '../src/probation.ts';
import { ModelStore } from '../src/state/model-store.ts';

let t: TestHub;
let agent: RunningAgent;
let dir: string;
const quiet = pino({ level: 'silent' });

const desiredOf = async () => (await t.hub.ctx.store.devices.get(agent.deviceId))?.desired as DesiredState;
const reportedDeployment = async () =>
  (await t.hub.ctx.store.devices.get(agent.deviceId))?.reported?.models.m?.deployment;
const activeVersion = () => agent.models.get('m')?.entry.version;

async function publishDesired(mutate: (d: DesiredState) => DesiredState): Promise<void> {
  const current = await desiredOf();
  const next = mutate(structuredClone(current));
  next.revision = current.revision + 1;
  await t.hub.ctx.store.devices.writeDesired(agent.deviceId, () => next);
  await t.hub.ctx.broker.publish(topics.desired(agent.deviceId), encodeMessage(next), { retain: true });
}

async function deploy(version: string) {
  const r = await t.api<{ id: string }>('POST', '/api/v1/rollouts', {
    model: 'm',
    version,
    target: { all: true },
  });
  expect(r.status).toBe(201);
  return r.body.id;
}

beforeAll(async () => {
  t = await startTestHub();
  dir = await mkdtemp(join(tmpdir(), 'ef-safety-'));
  const token = (await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { uses: 1 })).body.token;
  agent = await startAgent({
    dataDir: join(dir, 'agent'),
    hub: t.hub.url,
    enrollToken: token,
    port: 0,
    logger: quiet,
    probationMs: 120_000,
    telemetryIntervalMs: 60_000,
  });
  await waitFor(
    async () => (await t.hub.ctx.store.devices.get(agent.deviceId))?.status === 'online',
    'agent online',
  );
  await t.api(
    'PUT',
    '/api/v1/models/m/versions/1.0.0',
    mlpModel({ inputs: 4, hidden: [4], outputs: 2, seed: 1 }),
  );
  await t.api(
    'PUT',
    '/api/v1/models/m/versions/1.1.0',
    mlpModel({ inputs: 4, hidden: [4], outputs: 2, seed: 2 }),
  );
  await deploy('1.1.0');
  await waitFor(() => activeVersion() === '1.1.0', 'v1.1 active');
});

afterAll(async () => {
  await agent?.stop();
  await t?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('bundles the agent refuses', () => {
  /** A desired entry for the (published, never deployed) 1.3.0, built from its signed manifest and then altered. */
  async function candidate(alter: (manifestText: string) => string, sign: 'original' | 'stranger' | 'hub') {
    const signed = (
      await t.api<{ manifest: string; signature: unknown }>('GET', '/api/v1/models/m/versions/1.3.0/manifest')
    ).body;
    const text = alter(new TextDecoder().decode(fromBase64(signed.manifest)));
    const manifestBytes = new TextEncoder().encode(text);
    const signature =
      sign === 'original'
        ? signed.signature
        : await signManifest(
            manifestBytes,
            sign === 'hub' ? t.hub.ctx.signingKey : await generateSigningKey(),
          );
    const a = JSON.parse(text).artifacts[0];
    return {
      name: 'm',
      version: '1.3.0',
      deploymentId: `forged-${sign}-${Math.random()}`,
      artifact: {
        sha256: a.sha256,
        size_bytes: a.size_bytes,
        target: a.target,
        runtime: a.runtime,
        precision: a.precision,
        file: a.file,
      },
      manifest: toBase64(manifestBytes),
      signature,
    };
  }

  beforeAll(async () => {
    await t.api(
      'PUT',
      '/api/v1/models/m/versions/1.3.0',
      mlpModel({ inputs: 4, hidden: [4], outputs: 2, seed: 3 }),
    );
  });

  it('refuses a manifest signed by a key it never pinned', async () => {
    const entry = await candidate((text) => text, 'stranger');
    await publishDesired((d) => ({ ...d, models: { m: entry } }));
    await waitFor(
      async () => (await reportedDeployment())?.error?.code === 'BUNDLE_UNTRUSTED_KEY',
      'untrusted key refused',
    );
    expect(activeVersion()).toBe('1.1.0');
  });

  it('refuses a tampered manifest', async () => {
    const entry = await candidate((text) => text.replace('"fp32"', '"int8"'), 'original');
    await publishDesired((d) => ({ ...d, models: { m: entry } }));
    await waitFor(
      async () => (await reportedDeployment())?.error?.code === 'BUNDLE_SIGNATURE_INVALID',
      'tampering refused',
    );
    expect(activeVersion()).toBe('1.1.0');
  });

  it('refuses an expired bundle, even one signed by the hub', async () => {
    const entry = await candidate(
      (text) => JSON.stringify({ ...JSON.parse(text), expiresAt: '2020-01-01T00:00:00.000Z' }),
      'hub',
    );
    await publishDesired((d) => ({ ...d, models: { m: entry } }));
    await waitFor(
      async () => (await reportedDeployment())?.error?.code === 'BUNDLE_EXPIRED',
      'expired refused',
    );
    expect(activeVersion()).toBe('1.1.0');
  });

  it('refuses a downgrade that is not a rollback', async () => {
    await deploy('1.0.0');
    await waitFor(
      async () => (await reportedDeployment())?.error?.code === 'BUNDLE_DOWNGRADE',
      'downgrade refused',
    );
    expect(activeVersion()).toBe('1.1.0');
  });
});

describe('reverting on the device', () => {
  it('reverts a model whose error rate spikes after the switch, and reports why', async () => {
    // Every output NaN: log(x − 10) for inputs in [−1, 1].
    const broken = buildModel({
      inputs: [{ name: 'input', shape: [1, 4] }],
      outputs: [{ name: 'output', shape: [1, 4] }],
      initializers: [{ name: 'c', dims: [1], data: Float32Array.from([-10]) }],
      nodes: [
        { op: 'Add', inputs: ['input', 'c'], outputs: ['shifted'] },
        { op: 'Log', inputs: ['shifted'], outputs: ['output'] },
      ],
    });
    await t.api('PUT', '/api/v1/models/m/versions/1.2.0', broken);
    await deploy('1.2.0');
    await waitFor(() => activeVersion() === '1.2.0', 'v1.2 active');
    for (let i = 0; i < 25; i++) {
      await fetch(`http://127.0.0.1:${agent.port}/v2/models/m/infer`, {
        method: 'POST',
        body: JSON.stringify({
          inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }],
        }),
      });
    }
    await waitFor(() => activeVersion() === '1.1.0', 'reverted to v1.1', 30_000);
    await waitFor(async () => (await reportedDeployment())?.state === 'rolled-back', 'reported rolled-back');
    expect((await reportedDeployment())?.error?.code).toBe('ERROR_RATE_SPIKE');
  });

  it('reverts a model that crash-loops the agent at boot', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'ef-crashloop-'));
    const store = new ModelStore(storeDir);
    const entry = (version: string, probation: boolean) => ({
      name: 'm',
      version,
      sha256: version.repeat(20).slice(0, 64),
      target: 'cpu',
      runtime: 'onnxruntime',
      precision: 'fp32',
      since: new Date().toISOString(),
      deploymentId: `ro-${version}`,
      dir: version,
      artifact: {
        file: 'cpu/model.onnx',
        target: 'cpu' as const,
        runtime: 'onnxruntime' as const,
        precision: 'fp32' as const,
        sha256: 'a'.repeat(64),
        size_bytes: 1,
        requires: [],
      },
      probation: probation ? { startedAt: new Date().toISOString(), boots: 0, passedAt: null } : null,
    });
    await store.activate('m', entry('1.0.0', false));
    await store.activate('m', entry('2.0.0', true));
    const guard = new ProbationGuard({
      store,
      models: agent.models,
      metrics: undefined as never,
      reconciler: undefined as never,
      logger: quiet,
      probationMs: 60_000,
    });
    expect((await guard.atBoot('m'))?.version).toBe('2.0.0');
    expect((await guard.atBoot('m'))?.version).toBe('2.0.0');
    expect((await guard.atBoot('m'))?.version).toBe('1.0.0');
    const state = await store.read('m');
    expect(state.failed.at(-1)).toMatchObject({ deploymentId: 'ro-2.0.0', code: 'MODEL_CRASH_LOOP' });
    await rm(storeDir, { recursive: true, force: true });
  });
});
