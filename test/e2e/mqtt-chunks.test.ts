/** Artifacts in chunks over MQTT for a device that reaches only the broker, across a dropped connection. */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mlpModel } from '@edgefleet/converters';
import { afterAll, describe, expect, it } from 'vitest';
import { hubApi, spawnAgent, spawnHub } from '../support/processes.ts';
import { waitFor } from '../support/services.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

describe('chunked transfer over MQTT', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('completes a transfer that loses its connection half-way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-chunks-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const hub = await spawnHub({ dataDir: join(dir, 'hub') });
    cleanups.push(() => hub.kill());
    const api = hubApi(hub.url, hub.adminToken);
    const mqttProxy = await startTcpProxy('127.0.0.1', hub.mqttPort as number);
    cleanups.push(() => mqttProxy.close());

    const model = mlpModel({ inputs: 16, hidden: [900, 900], outputs: 4, seed: 3 }); // ~3.4 MB
    const published = await api<{ files: { file: string; sha256: string }[] }>(
      'PUT',
      '/models/c/versions/1.0.0',
      model,
    );
    const sha = published.files.find((f) => f.file === 'cpu/model.onnx')?.sha256 as string;
    const token = (await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 })).token;
    const data = join(dir, 'agent');
    const agent = await spawnAgent([
      '--hub',
      hub.url,
      '--enroll-token',
      token,
      '--data',
      data,
      '--mqtt-url',
      mqttProxy.url('mqtt'),
      '--artifact-transport',
      'mqtt',
    ]);
    cleanups.push(() => agent.kill());
    await waitFor(
      async () =>
        (await api<{ devices: { status: string }[] }>('GET', '/devices')).devices[0]?.status === 'online',
      'agent online',
    );

    mqttProxy.setRate(256 * 1024);
    await api('POST', '/rollouts', { model: 'c', version: '1.0.0', target: { all: true } });
    const part = join(data, 'downloads', `${sha}.part`);
    await waitFor(
      async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 512 * 1024,
      'half a transfer',
      60_000,
      50,
    );
    // Cut only once the hub has heard of the device's progress, so its resend has an offset to go by.
    const confirmed = async () =>
      (
        await api<{ reported?: { transfers?: { sha256: string; offset: number }[] } }>(
          'GET',
          `/devices/${(await api<{ devices: { id: string }[] }>('GET', '/devices')).devices[0]?.id}`,
        )
      ).reported?.transfers?.find((t) => t.sha256 === sha)?.offset ?? 0;
    await waitFor(async () => (await confirmed()) > 0, 'the hub hears of progress', 60_000, 50);
    const cutAt = Date.now();
    mqttProxy.cut();
    const before = (await stat(part)).size;
    expect(before).toBeLessThan(model.byteLength);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    mqttProxy.setRate(0);
    mqttProxy.restore();

    await waitFor(
      async () => (await fetch(`${agent.inferenceUrl}/models/c/ready`)).ok,
      'model active after the transfer resumed',
      90_000,
    );
    await agent.waitForLog('receiving over MQTT');
    // After the drop nothing started again from zero: the hub resends from the last offset the
    // device confirmed (which may lag what the device has written; the device skips chunks it
    // already has), and the device kept its partial file. (Before the drop, a throttled link can
    // delay confirmations past the hub's stall timeout, so an early resend from zero is allowed.)
    const sends = hub.output
      .filter((l) => /resending artifact chunks|streaming artifact over MQTT/.test(l))
      .map((l) => JSON.parse(l) as { from: number; sha256: string; time: number })
      .filter((r) => sha.startsWith(r.sha256));
    expect(sends[0]?.from).toBe(0);
    expect(sends.filter((r) => r.time >= cutAt && r.from === 0)).toEqual([]);
    const receiving = agent.output
      .filter((l) => l.includes('receiving over MQTT'))
      .map((l) => JSON.parse(l) as { offset: number; sha256: string })
      .filter((r) => sha.startsWith(r.sha256));
    expect(receiving[0]?.offset).toBe(0);
    expect(receiving.slice(1).every((r) => r.offset >= before)).toBe(true);
    // Nothing arrived corrupted (a resend racing a chunk in flight once mislabelled its bytes).
    expect(agent.output.filter((l) => l.includes('ARTIFACT_HASH_MISMATCH'))).toEqual([]);
    // HTTP never carried the artifact.
    expect(hub.output.some((l) => l.includes(`/artifacts/${sha}`))).toBe(false);
  }, 180_000);
});
