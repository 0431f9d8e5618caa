/**
 * The spine under faults, with real processes: the broker disappears for 30 s while agents keep
 * sampling; an agent is killed in the middle of a download and must resume, never activating a
 * half-written file.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mlpModel, runOnnx } from '@edgefleet/converters';
import { afterAll, describe, expect, it } from 'vitest';
import { type AgentProc, hubApi, spawnAgent, spawnHub } from '../support/processes.ts';
import { requireService, startMosquitto, waitFor } from '../support/services.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const mosquittoBinary = await requireService('mosquitto-binary');

interface Sample {
  seq: number;
  ts: string;
}

async function enrollToken(api: ReturnType<typeof hubApi>, uses: number): Promise<string> {
  return (await api<{ token: string }>('POST', '/enrollment-tokens', { uses })).token;
}

describe('spine faults', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it.skipIf(!mosquittoBinary.available)(
    'keeps every telemetry sample taken while the broker is down for 30 s, each exactly once',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ef-outage-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const broker = await startMosquitto('allow_anonymous true\n', { persistent: true });
      cleanups.push(() => broker.stop());
      const hub = await spawnHub({
        dataDir: join(dir, 'hub'),
        args: ['--mqtt-url', broker.url, '--replica-id', 'outage'],
      });
      cleanups.push(() => hub.kill());
      const api = hubApi(hub.url, hub.adminToken);
      const token = await enrollToken(api, 2);
      const agents: AgentProc[] = [];
      for (let i = 0; i < 2; i++) {
        const agent = await spawnAgent([
          '--hub',
          hub.url,
          '--enroll-token',
          token,
          '--data',
          join(dir, `agent-${i}`),
          '--telemetry-interval',
          '1',
        ]);
        cleanups.push(() => agent.kill());
        agents.push(agent);
      }
      const devices = async () =>
        (await api<{ devices: { id: string; status: string }[] }>('GET', '/devices')).devices;
      await waitFor(
        async () => (await devices()).filter((d) => d.status === 'online').length === 2,
        'agents online',
      );
      const samples = async (id: string) =>
        (await api<{ samples: Sample[] }>('GET', `/devices/${id}/telemetry?limit=10000`)).samples;
      const ids = (await devices()).map((d) => d.id);
      await waitFor(
        async () => (await Promise.all(ids.map(samples))).every((s) => s.length >= 3),
        'first samples stored',
      );

      await broker.stop();
      const outageStart = Date.now();
      // The outage itself is the scenario: agents sample once a second into their outboxes.
      await new Promise((resolve) => setTimeout(resolve, 30_000));
      await broker.start();
      const restarted = Date.now();

      for (const id of ids) {
        await waitFor(
          async () => (await samples(id)).some((s) => Date.parse(s.ts) > restarted + 2000),
          `telemetry after the outage for ${id}`,
          60_000,
          250,
        );
        const stored = await samples(id);
        const seqs = stored.map((s) => s.seq);
        const max = Math.max(...seqs);
        // Every sample the agent took is there once: seq numbers 1..max with no gap and no repeat.
        expect(seqs).toEqual(Array.from({ length: max }, (_, i) => i + 1));
        const duringOutage = stored.filter(
          (s) => Date.parse(s.ts) >= outageStart && Date.parse(s.ts) < restarted,
        );
        expect(duringOutage.length).toBeGreaterThanOrEqual(25);
      }
    },
    180_000,
  );

  it('resumes a download after the agent is killed mid-way and never activates a partial file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-resume-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const hub = await spawnHub({ dataDir: join(dir, 'hub') });
    cleanups.push(() => hub.kill());
    const api = hubApi(hub.url, hub.adminToken);
    const hubPort = Number(new URL(hub.url).port);
    const proxy = await startTcpProxy('127.0.0.1', hubPort);
    cleanups.push(() => proxy.close());

    const small = mlpModel({ inputs: 16, hidden: [16], outputs: 4, seed: 1 });
    const big = mlpModel({ inputs: 16, hidden: [1200, 1200], outputs: 4, seed: 2 }); // ~5.9 MB of weights
    await api('PUT', '/models/m/versions/1.0.0', small);
    const v2 = await api<{ files: { file: string; sha256: string; sizeBytes: number }[] }>(
      'PUT',
      '/models/m/versions/2.0.0',
      big,
    );
    const bigSha = v2.files.find((f) => f.file === 'cpu/model.onnx')?.sha256 as string;

    const data = join(dir, 'agent');
    const token = await enrollToken(api, 1);
    let agent = await spawnAgent(['--hub', proxy.url('http'), '--enroll-token', token, '--data', data]);
    cleanups.push(() => agent.kill());
    await api('POST', '/rollouts', { model: 'm', version: '1.0.0', target: { all: true } });
    await waitFor(async () => (await fetch(`${agent.inferenceUrl}/models/m`)).ok, 'v1 active');

    proxy.setRate(512 * 1024);
    await api('POST', '/rollouts', { model: 'm', version: '2.0.0', target: { all: true } });
    const part = join(data, 'downloads', `${bigSha}.part`);
    await waitFor(
      async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 1024 * 1024,
      'a partial download',
      60_000,
      50,
    );
    await agent.kill('SIGKILL');
    const partial = (await stat(part)).size;
    expect(partial).toBeLessThan(big.byteLength);

    // The active model is still v1, complete and intact.
    const slot = JSON.parse(await readFile(join(data, 'models/m/slot.json'), 'utf8')) as {
      active: { version: string; dir: string; sha256: string };
    };
    expect(slot.active.version).toBe('1.0.0');
    const activeBytes = await readFile(join(data, 'models/m', slot.active.dir, 'model.onnx'));
    expect(createHash('sha256').update(activeBytes).digest('hex')).toBe(slot.active.sha256);
    expect((await readdir(join(data, 'models/m'))).filter((n) => n.startsWith('2.0.0'))).toEqual([]);

    proxy.setRate(0);
    agent = await spawnAgent(['--data', data]);
    cleanups.push(() => agent.kill());
    await waitFor(
      async () =>
        ((await (await fetch(`${agent.inferenceUrl}/models/m`)).json()) as { versions?: string[] })
          .versions?.[0] === '2.0.0',
      'v2 active after restart',
      90_000,
    );
    const resumed = proxy.requests.filter(
      (r) => r.includes(`/artifacts/${bigSha}`) && /range: bytes=\d+-/i.test(r),
    );
    expect(resumed.length).toBeGreaterThan(0);
    expect(Number(/range: bytes=(\d+)-/i.exec(resumed[0] ?? '')?.[1])).toBeGreaterThan(0);

    const input = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    const expected = (await runOnnx(big, { input: { dtype: 'float32', shape: [1, 16], data: input } })).output
      ?.data as Float32Array;
    const response = await fetch(`${agent.inferenceUrl}/models/m/infer`, {
      method: 'POST',
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 16], datatype: 'FP32', data: Array.from(input) }],
      }),
    });
    const body = (await response.json()) as { outputs: { data: number[] }[] };
    for (const [i, v] of (body.outputs[0]?.data ?? []).entries())
      expect(v).toBeCloseTo(expected[i] as number, 4);
  }, 180_000);
});
