/**
 * The dashboard in Debian chromium against a real hub and live agents: sign in, watch the fleet
 * and a device's charts update, start and pause a rollout, on desktop and phone-sized screens.
 * Screenshots of each page land in test-results/screenshots/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, publicKeyOf, signManifest } from '@edgefleet/bundle';
import { mlpModel } from '@edgefleet/converters';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseManifestFor } from '../support/agent-release.ts';
import { launchBrowser, newPage, screenshot } from '../support/browser.ts';
import { type AgentProc, type HubProc, hubApi, spawnAgent, spawnHub } from '../support/processes.ts';
import { requireService, waitFor } from '../support/services.ts';

const chromium = await requireService('chromium');

describe.skipIf(!chromium.available)('dashboard', () => {
  let dir: string;
  let hub: HubProc;
  let api: ReturnType<typeof hubApi>;
  const agents: AgentProc[] = [];
  let browser: Browser;
  let viewerToken: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-dash-'));
    hub = await spawnHub({ dataDir: join(dir, 'hub') });
    api = hubApi(hub.url, hub.adminToken);
    const token = (await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 3, tags: ['lab'] }))
      .token;
    for (let i = 0; i < 3; i++) {
      agents.push(
        await spawnAgent([
          '--hub',
          hub.url,
          '--enroll-token',
          token,
          '--data',
          join(dir, `agent-${i}`),
          '--name',
          `cam-${i}`,
          '--telemetry-interval',
          '1',
        ]),
      );
    }
    await api(
      'PUT',
      '/models/detector/versions/1.0.0',
      mlpModel({ inputs: 8, hidden: [16], outputs: 3, softmax: true }),
    );
    await api(
      'PUT',
      '/models/detector/versions/1.1.0',
      mlpModel({ inputs: 8, hidden: [16], outputs: 3, softmax: true, seed: 5 }),
    );
    const first = await api<{ id: string }>('POST', '/rollouts', {
      model: 'detector',
      version: '1.0.0',
      target: { all: true },
    });
    await waitFor(
      async () => (await api<{ state: string }>('GET', `/rollouts/${first.id}`)).state === 'completed',
      'first rollout',
      60_000,
    );
    viewerToken = (await api<{ token: string }>('POST', '/tokens', { role: 'viewer', name: 'wall-screen' }))
      .token;
    browser = await launchBrowser({ webgpu: false });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(agents.map((a) => a.kill()));
    await hub?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('signs in, shows the live fleet, and a device page whose charts grow as telemetry arrives', async () => {
    const { context, page } = await newPage(browser);
    await page.goto(hub.url);
    await page.fill('input[name=token]', 'efa_wrong');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error');
    await page.fill('input[name=token]', hub.adminToken);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=devices]');
    await page.waitForSelector('[data-testid=live].on');
    await waitFor(
      async () => (await page.textContent('[data-testid=online-count]'))?.includes('3') === true,
      'three online in the UI',
    );
    expect(await page.textContent('[data-testid=devices]')).toContain('detector@1.0.0');
    await screenshot(page, 'fleet');

    // An agent release for cam-0, which runs from npm and so says it cannot update itself.
    const key = await generateSigningKey();
    await api('POST', '/keys', { name: 'releases', publicKey: publicKeyOf(key).publicKey });
    const archive = new TextEncoder().encode('an agent release archive');
    const manifest = releaseManifestFor(archive, '0.9.0');
    const published = await fetch(`${hub.url}/api/v1/agent-releases/0.9.0/x64`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${hub.adminToken}`,
        'x-edgefleet-release-manifest': Buffer.from(manifest).toString('base64'),
        'x-edgefleet-release-signature': Buffer.from(
          JSON.stringify(await signManifest(manifest, key)),
        ).toString('base64'),
      },
      body: archive,
    });
    expect(published.status).toBe(201);
    const cam0 = (await api<{ devices: { id: string; name: string }[] }>('GET', '/devices')).devices.find(
      (d) => d.name === 'cam-0',
    );
    await api('POST', '/agent-releases/0.9.0/deploy', { target: { devices: [cam0?.id] } });

    await page.click('text=cam-0');
    await page.waitForSelector('[data-testid=chart-cpu] .chart-box canvas');
    await page.waitForSelector('[data-testid=agent-update]:has-text("UPDATE_REFUSED")');
    expect(await page.textContent('[data-testid=agent-update]')).toMatch(/agent update to 0\.9\.0: failed/);
    const points = async () =>
      Number(await page.getAttribute('[data-testid=chart-cpu] .chart-box', 'data-points'));
    const before = await points();
    // No reload: the page updates from the live stream.
    await waitFor(async () => (await points()) >= before + 2, 'charts updating live', 30_000, 250);
    await screenshot(page, 'device');
    await context.close();
  });

  it('starts a rollout from the form, pauses it, and shows its batches, gates and history', async () => {
    const { context, page } = await newPage(browser);
    await page.goto(hub.url);
    await page.fill('input[name=token]', hub.adminToken);
    await page.click('button[type=submit]');
    await page.click('text=Rollouts');
    await page.selectOption('select[name=model]', 'detector@1.1.0');
    await page.fill('input[name=target]', 'tag:lab');
    await page.fill('input[name=batches]', '1,100%');
    await page.fill('input[name=soak]', '120');
    await page.click('[data-testid=new-rollout] button[type=submit]');
    await page.waitForSelector('[data-testid=rollout-actions] button:has-text("pause")');
    await screenshot(page, 'rollout-running');
    await page.click('[data-testid=rollout-actions] button:has-text("pause")');
    await page.waitForSelector('.badge:has-text("paused")');
    await page.waitForSelector('text=paused by token:admin');
    const id = page.url().split('/').at(-1) as string;
    expect((await api<{ state: string; stateReason: string }>('GET', `/rollouts/${id}`)).stateReason).toMatch(
      /paused by token:admin/,
    );
    await screenshot(page, 'rollout-paused');
    await page.click('text=Models');
    await page.click('text=detector');
    await page.waitForSelector('text=cpu/model.onnx');
    await screenshot(page, 'model');
    await context.close();
  });

  it('gives a viewer no controls, and fits a phone screen', async () => {
    const { context, page } = await newPage(browser, { phone: true });
    await page.goto(hub.url);
    await page.fill('input[name=token]', viewerToken);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=devices]');
    await screenshot(page, 'fleet-phone');
    await page.click('text=Rollouts');
    await page.waitForSelector('table');
    expect(await page.$('[data-testid=new-rollout]')).toBeNull();
    await page.click('table a');
    await page.waitForSelector('text=Batches');
    expect(await page.$('[data-testid=rollout-actions]')).toBeNull();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1);
    await screenshot(page, 'rollout-phone');
    await context.close();
  });
});
