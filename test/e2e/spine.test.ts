/**
 * The spine, end to end with real processes: a hub and three agents; a model is published and
 * deployed with the CLI, and every agent answers inference requests with the model's true outputs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectOnnx, mlpModel, runOnnx } from '@edgefleet/converters';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { type AgentProc, type HubProc, hubApi, runCli, spawnAgent, spawnHub } from '../support/processes.ts';
import { MOSQUITTO_URL, requireService, waitFor } from '../support/services.ts';

const postgres = await requireService('postgres');
const mosquitto = await requireService('mosquitto');

interface DeviceView {
  id: string;
  name: string;
  status: string;
  lastTelemetryAgeSeconds: number | null;
}

const setups = [
  { name: 'embedded broker and SQLite', available: true, pg: false, external: false },
  {
    name: 'Mosquitto and PostgreSQL',
    available: postgres.available && mosquitto.available,
    pg: true,
    external: true,
  },
];

for (const setup of setups) {
  describe.skipIf(!setup.available)(`spine with ${setup.name}`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    });

    it('publishes, deploys and serves one model on three agents, and reports them online with telemetry', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ef-spine-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      let db: TestDatabase | undefined;
      if (setup.pg) {
        db = await createTestDatabase();
        cleanups.push(() => (db as TestDatabase).drop());
      }
      const hub: HubProc = await spawnHub({
        dataDir: join(dir, 'hub'),
        args: [
          ...(db ? ['--db', db.url] : []),
          ...(setup.external ? ['--mqtt-url', MOSQUITTO_URL, '--replica-id', `spine-${Date.now()}`] : []),
        ],
      });
      cleanups.push(() => hub.kill());
      const env = { EDGEFLEET_HUB: hub.url, EDGEFLEET_TOKEN: hub.adminToken };
      const api = hubApi(hub.url, hub.adminToken);

      const token = await runCli(['token', 'create', '--uses', '3', '--tags', 'e2e'], env);
      expect(token.code, token.stderr).toBe(0);
      const enrollToken = token.stdout.trim();

      const agents: AgentProc[] = [];
      for (let i = 0; i < 3; i++) {
        const agent = await spawnAgent([
          '--hub',
          hub.url,
          '--enroll-token',
          enrollToken,
          '--data',
          join(dir, `agent-${i}`),
          '--name',
          `pi-${i}`,
          '--telemetry-interval',
          '2',
        ]);
        cleanups.push(() => agent.kill());
        agents.push(agent);
      }
      await waitFor(
        async () =>
          (await api<{ devices: DeviceView[] }>('GET', '/devices')).devices.filter(
            (d) => d.status === 'online',
          ).length === 3,
        'three agents online',
      );

      const model = mlpModel({ inputs: 8, hidden: [32, 16], outputs: 5, softmax: true, seed: 42 });
      const modelPath = join(dir, 'classifier.onnx');
      await writeFile(modelPath, model);
      const published = await runCli(
        ['publish', modelPath, '--model', 'classifier', '--version', '1.0.0', '--json'],
        env,
      );
      expect(published.code, published.stderr).toBe(0);

      const deployStarted = performance.now();
      const deployed = await runCli(['deploy', 'classifier@1.0.0', '--to', 'tag:e2e'], env);
      expect(deployed.code, deployed.stderr).toBe(0);
      const rolloutId = deployed.stdout.trim();
      for (const agent of agents) {
        await waitFor(
          async () => (await fetch(`${agent.inferenceUrl}/models/classifier/ready`)).ok,
          'model ready on an agent',
          60_000,
          50,
        );
      }
      const deployToServingMs = performance.now() - deployStarted;

      const input = Float32Array.from({ length: 8 }, (_, i) => (i - 4) / 3);
      const expected = Array.from(
        (await runOnnx(model, { input: { dtype: 'float32', shape: [1, 8], data: input } })).output
          ?.data as Float32Array,
      );
      for (const agent of agents) {
        const response = await fetch(`${agent.inferenceUrl}/models/classifier/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: Array.from(input) }],
          }),
        });
        expect(response.status).toBe(200);
        const body = (await response.json()) as {
          model_version: string;
          outputs: { name: string; shape: number[]; data: number[] }[];
        };
        expect(body.model_version).toBe('1.0.0');
        expect(body.outputs[0]?.shape).toEqual([1, 5]);
        for (const [i, v] of (body.outputs[0]?.data ?? []).entries())
          expect(v).toBeCloseTo(expected[i] as number, 5);
      }

      await waitFor(
        async () => (await api<{ state: string }>('GET', `/rollouts/${rolloutId}`)).state === 'completed',
        'rollout completed',
      );
      const { devices } = await api<{ devices: DeviceView[] }>('GET', '/devices');
      expect(devices.map((d) => d.status)).toEqual(['online', 'online', 'online']);
      for (const d of devices) expect(d.lastTelemetryAgeSeconds).toBeLessThan(30);
      const listed = await runCli(['devices'], env);
      expect(listed.stdout).toMatch(/pi-0.*online.*classifier@1\.0\.0/);

      const figures = {
        setup: setup.name,
        deployToAllServingMs: Math.round(deployToServingMs),
        agentRssMb: await Promise.all(agents.map((a) => a.rssMb().then((r) => Math.round(r)))),
        hubRssMb: Math.round(await hub.rssMb()),
      };
      console.log(`spine figures: ${JSON.stringify(figures)}`);
      expect(inspectOnnx(model).parameterCount).toBeGreaterThan(0);
    }, 180_000);
  });
}
