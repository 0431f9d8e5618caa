/**
 * Faults with real processes: the hub killed and restarted, the broker restarted, an agent cut off for over a minute,
 * power loss (kill -9) at random moments of an install, a full disk, a corrupted download. The
 * agent keeps serving its last good model throughout, and nothing acknowledged is lost.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mlpModel } from '@edgefleet/converters';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AgentProc,
  enrollAgent,
  type HubProc,
  hubApi,
  spawnAgent,
  spawnHub,
} from '../support/processes.ts';
import { freePort, requireService, startMosquitto, waitFor } from '../support/services.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const tmpfs = await requireService('tmpfs');
const mosquitto = await requireService('mosquitto-binary');
const run = promisify(execFile);

const small = mlpModel({ inputs: 8, hidden: [8], outputs: 2, seed: 1 });
const medium = mlpModel({ inputs: 8, hidden: [600, 600], outputs: 2, seed: 2 }); // ~1.5 MB

async function version(agent: AgentProc, model = 'm'): Promise<string | undefined> {
  const r = await fetch(`${agent.inferenceUrl}/models/${model}`).catch(() => undefined);
  if (!r?.ok) return undefined;
  return ((await r.json()) as { versions: string[] }).versions[0];
}

async function infers(agent: AgentProc): Promise<boolean> {
  const r = await fetch(`${agent.inferenceUrl}/models/m/infer`, {
    method: 'POST',
    body: JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }],
    }),
  }).catch(() => undefined);
  return r?.status === 200;
}

interface Sample {
  seq: number;
}

describe('faults', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse())
      await Promise.race([c().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
  });
  const tempDir = async (name: string) => {
    const dir = await mkdtemp(join(tmpdir(), `ef-${name}-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };

  it('keeps serving through a hub crash; after the restart every sample taken meanwhile arrives once', async () => {
    const dir = await tempDir('hubcrash');
    const [port, mqttPort] = [await freePort(), await freePort()];
    const args = ['--port', String(port), '--mqtt-port', String(mqttPort)];
    const adminToken = 'efa_fault_admin';
    let hub: HubProc = await spawnHub({ dataDir: join(dir, 'hub'), adminToken, args });
    const api = () => hubApi(`http://127.0.0.1:${port}`, adminToken);
    const agent = await enrollAgent(hub, join(dir, 'agent'), ['--telemetry-interval', '1']);
    cleanups.push(() => agent.kill());
    await api()('PUT', '/models/m/versions/1.0.0', small);
    await api()('POST', '/rollouts', { model: 'm', version: '1.0.0', target: { all: true } });
    await waitFor(async () => (await version(agent)) === '1.0.0', 'model active');

    await hub.kill('SIGKILL');
    for (let i = 0; i < 10; i++) {
      expect(await infers(agent)).toBe(true);
      await new Promise((r) => setTimeout(r, 1000));
    }
    hub = await spawnHub({ dataDir: join(dir, 'hub'), adminToken, args });
    cleanups.push(() => hub.kill());
    const deviceId = (await api()<{ devices: { id: string }[] }>('GET', '/devices')).devices[0]?.id as string;
    const restarted = Date.now();
    await waitFor(
      async () =>
        (
          await api()<{ samples: (Sample & { ts: string })[] }>(
            'GET',
            `/devices/${deviceId}/telemetry?limit=10000`,
          )
        ).samples.some((s) => Date.parse(s.ts) > restarted + 1000),
      'telemetry after the restart',
      60_000,
    );
    const seqs = (
      await api()<{ samples: Sample[] }>('GET', `/devices/${deviceId}/telemetry?limit=10000`)
    ).samples.map((s) => s.seq);
    expect(seqs).toEqual(Array.from({ length: Math.max(...seqs) }, (_, i) => i + 1));
    expect(seqs.length).toBeGreaterThan(12);
  }, 180_000);

  it.skipIf(!mosquitto.available)(
    'rides out a Mosquitto restart: hub and agent reconnect, and every sample arrives once',
    async () => {
      const dir = await tempDir('brokerrestart');
      const broker = await startMosquitto('allow_anonymous true\n', { persistent: true });
      cleanups.push(() => broker.stop());
      const hub = await spawnHub({ dataDir: join(dir, 'hub'), args: ['--mqtt-url', broker.url] });
      cleanups.push(() => hub.kill());
      const api = hubApi(hub.url, hub.adminToken);
      const agent = await enrollAgent(hub, join(dir, 'agent'), ['--telemetry-interval', '1']);
      cleanups.push(() => agent.kill());
      await api('PUT', '/models/m/versions/1.0.0', small);
      await api('POST', '/rollouts', { model: 'm', version: '1.0.0', target: { all: true } });
      await waitFor(async () => (await version(agent)) === '1.0.0', 'model active');

      await broker.stop();
      // The hub stays up and says what is missing; load balancers take a degraded replica out.
      await waitFor(async () => (await fetch(`${hub.url}/healthz`)).status === 503, 'hub degraded');
      expect(await (await fetch(`${hub.url}/healthz`)).json()).toMatchObject({ db: true, broker: false });
      for (let i = 0; i < 6; i++) {
        expect(await infers(agent)).toBe(true);
        await new Promise((r) => setTimeout(r, 1000));
      }
      await broker.start();
      await waitFor(async () => (await fetch(`${hub.url}/healthz`)).status === 200, 'hub healthy again');
      const deviceId = (await api<{ devices: { id: string }[] }>('GET', '/devices')).devices[0]?.id as string;
      const restarted = Date.now();
      const telemetry = async () =>
        (
          await api<{ samples: (Sample & { ts: string })[] }>(
            'GET',
            `/devices/${deviceId}/telemetry?limit=10000`,
          )
        ).samples;
      await waitFor(
        async () => (await telemetry()).some((s) => Date.parse(s.ts) > restarted + 1000),
        'telemetry after the broker restart',
        60_000,
      );
      const seqs = (await telemetry()).map((s) => s.seq);
      expect(seqs).toEqual(Array.from({ length: Math.max(...seqs) }, (_, i) => i + 1));
      expect(seqs.length).toBeGreaterThan(8);
    },
    120_000,
  );

  it('serves while cut off for over a minute, then catches up with a deployment made meanwhile', async () => {
    const dir = await tempDir('cutoff');
    const hub = await spawnHub({ dataDir: join(dir, 'hub') });
    cleanups.push(() => hub.kill());
    const api = hubApi(hub.url, hub.adminToken);
    const httpProxy = await startTcpProxy('127.0.0.1', Number(new URL(hub.url).port));
    const mqttProxy = await startTcpProxy('127.0.0.1', hub.mqttPort as number);
    cleanups.push(
      () => httpProxy.close(),
      () => mqttProxy.close(),
    );
    const token = (await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 })).token;
    const agent = await spawnAgent([
      '--hub',
      httpProxy.url('http'),
      '--mqtt-url',
      mqttProxy.url('mqtt'),
      '--enroll-token',
      token,
      '--data',
      join(dir, 'agent'),
      '--telemetry-interval',
      '2',
    ]);
    cleanups.push(() => agent.kill());
    await api('PUT', '/models/m/versions/1.0.0', small);
    await api('POST', '/rollouts', { model: 'm', version: '1.0.0', target: { all: true } });
    await waitFor(async () => (await version(agent)) === '1.0.0', 'v1 active');

    httpProxy.cut();
    mqttProxy.cut();
    await api('PUT', '/models/m/versions/1.1.0', medium);
    const rollout = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.1.0',
      target: { all: true },
      deviceTimeoutSeconds: 600,
    });
    const cutUntil = Date.now() + 65_000;
    while (Date.now() < cutUntil) {
      expect(await infers(agent)).toBe(true);
      expect(await version(agent)).toBe('1.0.0');
      await new Promise((r) => setTimeout(r, 5000));
    }
    httpProxy.restore();
    mqttProxy.restore();
    await waitFor(async () => (await version(agent)) === '1.1.0', 'v1.1 active after reconnecting', 90_000);
    await waitFor(
      async () => (await api<{ state: string }>('GET', `/rollouts/${rollout.id}`)).state === 'completed',
      'rollout completed',
    );
    const deviceId = (await api<{ devices: { id: string }[] }>('GET', '/devices')).devices[0]?.id as string;
    const seqs = (
      await api<{ samples: Sample[] }>('GET', `/devices/${deviceId}/telemetry?limit=10000`)
    ).samples.map((s) => s.seq);
    expect(seqs).toEqual(Array.from({ length: Math.max(...seqs) }, (_, i) => i + 1));
  }, 240_000);

  it('comes back with a whole model after power loss at random moments of an install', async () => {
    const dir = await tempDir('powerloss');
    const hub = await spawnHub({ dataDir: join(dir, 'hub') });
    cleanups.push(() => hub.kill());
    const api = hubApi(hub.url, hub.adminToken);
    // A slow link, so the install takes a few seconds and the power cuts land inside it.
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(hub.url).port));
    cleanups.push(() => proxy.close());
    const token = (await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 })).token;
    const data = join(dir, 'agent');
    let agent = await spawnAgent(['--hub', proxy.url('http'), '--enroll-token', token, '--data', data]);
    await api('PUT', '/models/m/versions/1.0.0', small);
    await api('POST', '/rollouts', { model: 'm', version: '1.0.0', target: { all: true } });
    await waitFor(async () => (await version(agent)) === '1.0.0', 'v1 active');
    proxy.setRate(150 * 1024);
    await api('PUT', '/models/m/versions/1.1.0', medium);
    await api('POST', '/rollouts', { model: 'm', version: '1.1.0', target: { all: true } });
    // Fixed delays (replayable) between 0 and 2.5 s after each start; the cuts stop once the install is done.
    const delays = [150, 2400, 40, 1600, 900, 2500, 300, 20, 1200, 700];
    let cuts = 0;
    for (const delay of delays) {
      await new Promise((r) => setTimeout(r, delay));
      if ((await version(agent)) === '1.1.0') break;
      await agent.kill('SIGKILL');
      cuts++;
      agent = await spawnAgent(['--data', data]);
      // Every start serves a complete model, old or new, before it talks to anyone.
      expect(['1.0.0', '1.1.0']).toContain(await version(agent));
      expect(await infers(agent)).toBe(true);
    }
    cleanups.push(() => agent.kill());
    expect(cuts).toBeGreaterThan(2);
    await waitFor(async () => (await version(agent)) === '1.1.0', 'v1.1 finally active', 90_000);
    const slot = JSON.parse(await readFile(join(data, 'models/m/slot.json'), 'utf8')) as {
      active: { version: string };
    };
    expect(slot.active.version).toBe('1.1.0');
  }, 180_000);

  it.skipIf(!tmpfs.available)(
    'refuses a download that would fill the disk, keeps serving, and says so',
    async () => {
      const dir = await tempDir('fulldisk');
      const hub = await spawnHub({ dataDir: join(dir, 'hub') });
      cleanups.push(() => hub.kill());
      const api = hubApi(hub.url, hub.adminToken);
      const data = join(dir, 'small-disk');
      await mkdir(data);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', data]);
      cleanups.push(() => run('umount', ['-l', data]));
      const token = (await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 })).token;
      const agent = await spawnAgent(['--hub', hub.url, '--enroll-token', token, '--data', data]);
      cleanups.push(() => agent.kill());
      await api('PUT', '/models/m/versions/1.0.0', small);
      await api('POST', '/rollouts', { model: 'm', version: '1.0.0', target: { all: true } });
      await waitFor(async () => (await version(agent)) === '1.0.0', 'v1 active');
      await api(
        'PUT',
        '/models/m/versions/2.0.0',
        mlpModel({ inputs: 8, hidden: [1000, 1000], outputs: 2, seed: 3 }),
      ); // ~4 MB > 3 MB disk
      await api('POST', '/rollouts', { model: 'm', version: '2.0.0', target: { all: true } });
      const deviceId = (await api<{ devices: { id: string }[] }>('GET', '/devices')).devices[0]?.id as string;
      await waitFor(
        async () =>
          (
            await api<{ reported: { models: { m: { deployment: { error?: { code: string } } | null } } } }>(
              'GET',
              `/devices/${deviceId}`,
            )
          ).reported?.models.m.deployment?.error?.code === 'DISK_FULL',
        'DISK_FULL reported',
        60_000,
      );
      expect(await version(agent)).toBe('1.0.0');
      expect(await infers(agent)).toBe(true);
    },
    120_000,
  );

  it('rejects a corrupted download by its hash and gets it right on the retry', async () => {
    const dir = await tempDir('corrupt');
    const hub = await spawnHub({ dataDir: join(dir, 'hub') });
    cleanups.push(() => hub.kill());
    const api = hubApi(hub.url, hub.adminToken);
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(hub.url).port));
    cleanups.push(() => proxy.close());
    const token = (await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 })).token;
    const agent = await spawnAgent([
      '--hub',
      proxy.url('http'),
      '--enroll-token',
      token,
      '--data',
      join(dir, 'agent'),
    ]);
    cleanups.push(() => agent.kill());
    await api('PUT', '/models/m/versions/1.0.0', medium);
    proxy.corruptOnce(200_000);
    await api('POST', '/rollouts', { model: 'm', version: '1.0.0', target: { all: true } });
    await waitFor(async () => (await version(agent)) === '1.0.0', 'model active after a retry', 90_000);
    expect(agent.output.some((l) => l.includes('ARTIFACT_HASH_MISMATCH'))).toBe(true);
    expect(await infers(agent)).toBe(true);
  }, 120_000);
});
