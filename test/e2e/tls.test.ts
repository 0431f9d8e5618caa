/** TLS end to end: the API over HTTPS, the broker over mqtts and wss, agents that pin the hub's CA. */
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mlpModel } from '@edgefleet/converters';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { makeCerts } from '../support/certs.ts';
import { runCli, spawnAgent, spawnHub } from '../support/processes.ts';
import { waitFor } from '../support/services.ts';

/** An HTTPS call that trusts the test CA; the JSON answer. */
function trusting(
  ca: string,
  method: string,
  url: string,
  o: { headers: Record<string, string>; body?: string | Uint8Array },
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, ca, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (error) {
          reject(error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

describe('TLS', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse())
      await Promise.race([c().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
  });

  it('serves the API over HTTPS and MQTT over mqtts and wss to agents that pin the CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-tls-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const certs = await makeCerts(dir);
    const hub = await spawnHub({
      dataDir: join(dir, 'hub'),
      args: ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--mqtt-ws-port', '0'],
    });
    cleanups.push(() => hub.kill());
    expect(hub.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const call = async <T>(method: string, path: string, body?: unknown) => {
      const raw = body instanceof Uint8Array;
      return (await trusting(certs.caPem, method, `${hub.url}/api/v1${path}`, {
        headers: {
          authorization: `Bearer ${hub.adminToken}`,
          ...(body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
        },
        body: raw ? (body as Uint8Array) : body !== undefined ? JSON.stringify(body) : undefined,
      })) as T;
    };
    // Plain HTTP on the HTTPS port, and HTTPS without trusting the CA, both fail.
    await expect(
      fetch(`${hub.url.replace('https:', 'http:')}/healthz`, { signal: AbortSignal.timeout(3000) }),
    ).rejects.toThrow();
    await expect(fetch(`${hub.url}/healthz`, { signal: AbortSignal.timeout(3000) })).rejects.toThrow();

    const { token } = await call<{ token: string }>('POST', '/enrollment-tokens', { uses: 3 });
    const untrusting = await runCli([
      'agent',
      '--hub',
      hub.url,
      '--enroll-token',
      token,
      '--data',
      join(dir, 'no-ca'),
      '--port',
      '0',
    ]);
    expect(untrusting.code).toBe(1);
    expect(untrusting.stderr).toMatch(/cannot reach/);

    const agent = await spawnAgent([
      '--hub',
      hub.url,
      '--enroll-token',
      token,
      '--data',
      join(dir, 'agent'),
      '--ca',
      certs.caFile,
    ]);
    cleanups.push(() => agent.kill());
    const devices = async () =>
      (await call<{ devices: { id: string; status: string }[] }>('GET', '/devices')).devices;
    await waitFor(async () => (await devices())[0]?.status === 'online', 'agent online over mqtts');
    await call('PUT', '/models/tls/versions/1.0.0', mlpModel({ inputs: 4, hidden: [4], outputs: 2 }));
    await call('POST', '/rollouts', { model: 'tls', version: '1.0.0', target: { all: true } });
    await waitFor(
      async () => (await fetch(`${agent.inferenceUrl}/models/tls/ready`)).ok,
      'model served after an HTTPS download',
    );

    // The broker port speaks TLS only; wss works for a device with its own credentials.
    const enroll = async () => {
      const { token: t } = await call<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 });
      return (await trusting(certs.caPem, 'POST', `${hub.url}/api/v1/enroll`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: t, facts: { arch: 'x64', platform: 'linux' } }),
      })) as { deviceId: string; secret: string; mqtt: { url: string } };
    };
    const d = await enroll();
    expect(d.mqtt.url).toMatch(/^mqtts:\/\//);
    const port = new URL(d.mqtt.url).port;
    const plain = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      clientId: d.deviceId,
      username: d.deviceId,
      password: d.secret,
      reconnectPeriod: 0,
      connectTimeout: 3000,
    });
    const plainConnected = await new Promise<boolean>((resolve) => {
      plain.once('connect', () => resolve(true));
      plain.once('close', () => resolve(false));
      setTimeout(() => resolve(false), 5000);
    });
    plain.end(true);
    expect(plainConnected).toBe(false);
    const tlsClient = await mqtt.connectAsync(d.mqtt.url, {
      clientId: d.deviceId,
      username: d.deviceId,
      password: d.secret,
      reconnectPeriod: 0,
      ca: certs.caPem,
    });
    await tlsClient.endAsync(true);
    const wsPort = hub.output
      .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg?: string; port?: number }) : {}))
      .find((l) => l.msg === 'embedded MQTT broker listening on WebSocket')?.port;
    const wsClient = await mqtt.connectAsync(`wss://127.0.0.1:${wsPort}`, {
      clientId: d.deviceId,
      username: d.deviceId,
      password: d.secret,
      reconnectPeriod: 0,
      ca: certs.caPem,
    });
    await wsClient.endAsync(true);
  }, 120_000);
});
