import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectDevice, detectProfile, gatherFacts, gatherHardwareFacts } from '../src/detect.ts';

const fixturesDir = new URL('../../device-profiles/test/fixtures/', import.meta.url).pathname;
const linuxFixtures = readdirSync(fixturesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .map((name) => ({ name, meta: JSON.parse(readFileSync(join(fixturesDir, name, 'fixture.json'), 'utf8')) }))
  .filter((f) => f.meta.system.platform === 'linux');

const systemOf =
  (meta: { system: { platform: string; arch: string; memTotalMb: number; cpuCores: number } }) => async () =>
    meta.system;

describe('the agent reads device facts from the OS', () => {
  for (const { name, meta } of linuxFixtures) {
    it(`detects ${name} from its /proc, /sys, /dev and /etc files as ${meta.expect ?? 'no profile'}`, async () => {
      const { detection, facts } = await detectDevice({
        root: join(fixturesDir, name),
        system: systemOf(meta),
      });
      expect(detection.profileId).toBe(meta.expect);
      expect(facts.arch).toBe(meta.system.arch);
      expect(facts.memTotalMb).toBe(meta.system.memTotalMb);
    });
  }

  it('turns the device tree, USB ids and device nodes into enrollment facts', async () => {
    const root = join(fixturesDir, 'rpi4-coral-usb-no-firmware');
    const meta = JSON.parse(readFileSync(join(root, 'fixture.json'), 'utf8'));
    const hw = await gatherHardwareFacts({ root, system: systemOf(meta) });
    expect(hw.deviceTreeModel).toBe('Raspberry Pi 4 Model B Rev 1.4');
    expect(hw.deviceTreeCompatible).toEqual(['raspberrypi,4-model-b', 'brcm,bcm2711']);
    expect(hw.usbIds).toContain('1a6e:089a');
    const facts = await gatherFacts({ root, system: systemOf(meta) });
    expect(facts).toMatchObject({ model: 'Raspberry Pi 4 Model B Rev 1.4', accelerators: ['edgetpu'] });
    expect(detectProfile(facts)).toBe('rpi-coral-usb');

    const board = join(fixturesDir, 'coral-dev-board');
    const boardMeta = JSON.parse(readFileSync(join(board, 'fixture.json'), 'utf8'));
    const boardHw = await gatherHardwareFacts({ root: board, system: systemOf(boardMeta) });
    expect(boardHw.devices).toEqual(['/dev/apex_0']);
  });

  it('reads release files only where profiles ask for them', async () => {
    const root = join(fixturesDir, 'jetson-nano-container');
    const meta = JSON.parse(readFileSync(join(root, 'fixture.json'), 'utf8'));
    const hw = await gatherHardwareFacts({ root, system: systemOf(meta) });
    expect(Object.keys(hw.files ?? {})).toEqual(['/etc/nv_tegra_release']);
    expect(hw.deviceTreeModel).toBeUndefined();
  });

  it('falls back to platform-arch for facts built elsewhere that match no profile', () => {
    expect(detectProfile({ platform: 'linux', arch: 'arm', accelerators: [] })).toBe('linux-arm');
    expect(
      detectProfile({
        platform: 'linux',
        arch: 'arm64',
        model: 'Raspberry Pi 5 Model B Rev 1.0',
        accelerators: [],
      }),
    ).toBe('rpi5');
    expect(
      detectProfile({
        platform: 'linux',
        arch: 'arm64',
        model: 'Raspberry Pi 4 Model B Rev 1.2',
        accelerators: ['edgetpu'],
      }),
    ).toBe('rpi-coral-usb');
  });

  it('on this machine, an empty root gives the generic profile and live system facts', async () => {
    const { detection, facts } = await detectDevice({ root: '/nonexistent-root' });
    expect(facts.memTotalMb).toBeGreaterThan(0);
    expect(detection.profileId).toBe(`linux-${process.arch}`);
  });
});
