/**
 * Recorded device facts under test/fixtures/<name>/: a file tree laid out like the device's root
 * (proc/, sys/, dev/, etc/) plus fixture.json with the expected profile and the system facts
 * (platform, arch, memory) that come from Node rather than files.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HardwareFacts } from '@edgefleet/device-profiles';

export const fixturesDir = new URL('../fixtures/', import.meta.url).pathname;

export interface Fixture {
  name: string;
  dir: string;
  expect: string | null;
  source: string;
  system: { platform: string; arch: string; memTotalMb?: number; cpuCores?: number; features?: string[] };
}

export function listFixtures(): Fixture[] {
  return readdirSync(fixturesDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const dir = join(fixturesDir, d.name);
      const meta = JSON.parse(readFileSync(join(dir, 'fixture.json'), 'utf8'));
      return { name: d.name, dir, ...meta } as Fixture;
    });
}

const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);

/** The facts a fixture records, read the simple way (the agent's adapter is tested separately). */
export function factsOf(fixture: Fixture): HardwareFacts {
  const { dir } = fixture;
  const model = read(join(dir, 'proc/device-tree/model'));
  const compatible = read(join(dir, 'proc/device-tree/compatible'));
  const usbDir = join(dir, 'sys/bus/usb/devices');
  const usbIds = existsSync(usbDir)
    ? readdirSync(usbDir).map(
        (n) => `${read(join(usbDir, n, 'idVendor'))?.trim()}:${read(join(usbDir, n, 'idProduct'))?.trim()}`,
      )
    : [];
  const tegra = read(join(dir, 'etc/nv_tegra_release'));
  const cpuinfo = read(join(dir, 'proc/cpuinfo'));
  return {
    ...fixture.system,
    ...(model ? { deviceTreeModel: model.replace(/\0/g, '') } : {}),
    ...(compatible ? { deviceTreeCompatible: compatible.split('\0').filter(Boolean) } : {}),
    ...(cpuinfo ? { cpuinfo } : {}),
    usbIds,
    devices: existsSync(join(dir, 'dev/apex_0')) ? ['/dev/apex_0'] : [],
    files: tegra ? { '/etc/nv_tegra_release': tegra } : {},
  };
}
