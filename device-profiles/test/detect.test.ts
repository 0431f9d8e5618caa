import {
  acceleratorsIn,
  builtinProfiles,
  decodePiRevision,
  detectProfile,
  parseCpuinfo,
} from '@edgefleet/device-profiles';
import { describe, expect, it } from 'vitest';
import { factsOf, listFixtures } from './support/fixtures.ts';

const fixtures = listFixtures();

describe('detection from recorded device facts', () => {
  it('has a fixture for every built-in profile', () => {
    const covered = new Set(fixtures.map((f) => f.expect));
    for (const p of builtinProfiles) expect(covered.has(p.id), `fixture for ${p.id}`).toBe(true);
  });

  for (const fixture of fixtures) {
    it(`${fixture.name} is detected as ${fixture.expect ?? 'no profile'} (${fixture.source})`, () => {
      const detection = detectProfile(factsOf(fixture));
      expect(detection.profileId).toBe(fixture.expect);
      expect(detection.reasons.length).toBeGreaterThan(0);
      // The winner is strictly more specific than the runner-up: no ties decided by file order.
      const [first, second] = detection.candidates;
      if (first && second) expect(first.score).toBeGreaterThan(second.score);
    });
  }

  it('explains a Pi with a Coral by the board and the USB id, before and after the firmware loads', () => {
    const before = detectProfile(factsOf(fixtures.find((f) => f.name === 'rpi4-coral-usb-no-firmware')!));
    expect(before.reasons).toEqual(
      expect.arrayContaining([
        'device-tree model "Raspberry Pi 4 Model B Rev 1.4" matches /^Raspberry Pi [345]/',
        'USB device 1a6e:089a (Coral USB Accelerator, firmware not loaded yet)',
      ]),
    );
    const after = detectProfile(factsOf(fixtures.find((f) => f.name === 'rpi5-coral-usb')!));
    expect(after.reasons).toContain('USB device 18d1:9302 (Coral USB Accelerator, firmware loaded)');
  });

  it('says why a plain Pi is not a Pi with a Coral', () => {
    const d = detectProfile(factsOf(fixtures.find((f) => f.name === 'rpi4')!));
    expect(d.reasons).toContain('not rpi-coral-usb: its accelerator was not found');
  });

  it('recognises a Pi with no device tree from its revision code alone', () => {
    const d = detectProfile(factsOf(fixtures.find((f) => f.name === 'rpi4-no-device-tree')!));
    expect(d.profileId).toBe('rpi4');
    expect(d.reasons[0]).toBe('Raspberry Pi revision b03115 (board type 0x11, 2048 MB)');
  });

  it('recognises a Jetson Nano container from /etc/nv_tegra_release', () => {
    const d = detectProfile(factsOf(fixtures.find((f) => f.name === 'jetson-nano-container')!));
    expect(d.reasons[0]).toBe('/etc/nv_tegra_release matches /BOARD: t210ref/');
  });

  it('refuses a 32-bit OS on a Pi and says what to do', () => {
    const d = detectProfile(factsOf(fixtures.find((f) => f.name === 'rpi4-32bit-os')!));
    expect(d.profileId).toBeNull();
    expect(d.reasons.join('\n')).toMatch(
      /looks like rpi4 .* but arch is arm \(a 32-bit OS; edgefleet needs a 64-bit OS\), not arm64/,
    );
  });

  it('finds the Edge TPU among the accelerators of a generic box with a Coral stick', () => {
    const facts = factsOf(fixtures.find((f) => f.name === 'linux-x64-coral-usb')!);
    expect(detectProfile(facts).profileId).toBe('linux-x64');
    expect(acceleratorsIn(facts)).toEqual(['edgetpu']);
    expect(acceleratorsIn(factsOf(fixtures.find((f) => f.name === 'linux-x64')!))).toEqual([]);
    expect(acceleratorsIn(factsOf(fixtures.find((f) => f.name === 'coral-dev-board')!))).toEqual(['edgetpu']);
  });

  it('tells an unknown platform plainly', () => {
    const d = detectProfile({ platform: 'darwin', arch: 'arm64' });
    expect(d).toEqual({ profileId: null, reasons: ['no profile matches darwin/arm64'], candidates: [] });
  });
});

describe('fact parsers', () => {
  it('decodes new-style Raspberry Pi revision codes', () => {
    expect(decodePiRevision('a020d3')).toEqual({ type: 0x0d, memoryMb: 1024, revision: 3 });
    expect(decodePiRevision('c03114')).toEqual({ type: 0x11, memoryMb: 4096, revision: 4 });
    expect(decodePiRevision('d04170')).toEqual({ type: 0x17, memoryMb: 8192, revision: 0 });
    expect(decodePiRevision('000e')).toBeUndefined(); // old-style Pi 1 code
    expect(decodePiRevision('zz')).toBeUndefined();
  });

  it('reads the cpuinfo fields detection uses and ignores the rest', () => {
    const info = parseCpuinfo(
      'processor\t: 0\nCPU part\t: 0xd08\n\nprocessor\t: 1\nCPU part\t: 0xD08\n\nHardware\t: BCM2835\nRevision\t: C03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\ngarbage line\n',
    );
    expect(info).toEqual({
      processors: 2,
      cpuParts: ['0xd08'],
      hardware: 'BCM2835',
      revision: 'c03114',
      model: 'Raspberry Pi 4 Model B Rev 1.4',
    });
    expect(parseCpuinfo('')).toEqual({ processors: 0, cpuParts: [] });
  });
});
