/**
 * The files that make a freshly written Raspberry Pi OS card install and enroll the agent on first
 * boot, and the hook that runs them. Raspberry Pi OS has two first-boot mechanisms:
 *
 * - Trixie-based images (from October 2025) run cloud-init with the NoCloud seed on the boot
 *   partition (meta-data, user-data, network-config). We add `vendor-data` with a runcmd, which
 *   cloud-init applies beside user-data, so Raspberry Pi Imager's own settings stay untouched.
 * - Bookworm images run a script from the kernel command line (`systemd.run=…` in cmdline.txt, the
 *   way Raspberry Pi Imager runs its firstrun.sh). We append that hook, or, when Imager already
 *   wrote a firstrun.sh, call ours from it before it removes itself.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlashError } from './errors.ts';

export const HOOK =
  'systemd.run=/boot/firmware/edgefleet/firstboot.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target';
const IMAGER_CALL =
  'for b in /boot/firmware /boot; do [ -f "$b/edgefleet/firstboot.sh" ] && sh "$b/edgefleet/firstboot.sh" && break; done # edgefleet';

export interface BootFiles {
  templates: string;
  archive: string;
  enrollEnv: string;
}

/** Write `edgefleet/` (script, package, enrollment settings) and `vendor-data` into `dir`. */
export async function writeBootFiles(dir: string, files: BootFiles): Promise<string[]> {
  const sub = join(dir, 'edgefleet');
  await mkdir(sub, { recursive: true });
  await copyFile(join(files.templates, 'firstboot.sh'), join(sub, 'firstboot.sh'));
  await copyFile(files.archive, join(sub, 'edgefleet-agent.tar.gz'));
  // It holds the enrollment token: 0600 like the package's copy. `mode` applies only to a new file,
  // so an older copy (say 0644 from an earlier run) goes first. (FAT, the card itself, has no modes.)
  await rm(join(sub, 'enroll.env'), { force: true });
  await writeFile(join(sub, 'enroll.env'), files.enrollEnv, { mode: 0o600 });
  await copyFile(join(files.templates, 'vendor-data'), join(dir, 'vendor-data'));
  await writeFile(join(dir, 'edgefleet', 'cmdline-hook.txt'), `${HOOK}\n`);
  return [
    'edgefleet/firstboot.sh',
    'edgefleet/edgefleet-agent.tar.gz',
    'edgefleet/enroll.env',
    'vendor-data',
  ];
}

const read = (path: string) => readFile(path, 'utf8').catch(() => undefined);

/**
 * Write the boot files onto a mounted boot partition and hook them into first boot. Returns which
 * mechanism was used. Idempotent: a second run finds its hook and leaves it.
 */
export async function prepareBootPartition(
  dir: string,
  files: BootFiles,
): Promise<'cloud-init' | 'imager-firstrun' | 'cmdline'> {
  const cmdline = await read(join(dir, 'cmdline.txt'));
  if (cmdline === undefined)
    throw new FlashError(
      'FLASH_BOOT_INVALID',
      `${dir} has no cmdline.txt: is it a Raspberry Pi OS boot partition?`,
    );
  const existingVendor = await read(join(dir, 'vendor-data'));
  if (existingVendor !== undefined && !existingVendor.includes('edgefleet'))
    throw new FlashError(
      'FLASH_BOOT_INVALID',
      `${dir}/vendor-data exists and is not ours: add the runcmd from scripts/flash/templates/vendor-data to it by hand`,
    );
  await writeBootFiles(dir, files);
  const userData = await read(join(dir, 'user-data'));
  if ((await read(join(dir, 'meta-data'))) !== undefined || userData?.startsWith('#cloud-config'))
    return 'cloud-init';

  const firstrun = await read(join(dir, 'firstrun.sh'));
  if (firstrun !== undefined) {
    if (!firstrun.includes('# edgefleet')) {
      const lines = firstrun.split('\n');
      const at = lines.findIndex((l) => /^\s*rm -f \/boot(\/firmware)?\/firstrun\.sh/.test(l));
      lines.splice(at < 0 ? lines.length : at, 0, IMAGER_CALL);
      await writeFile(join(dir, 'firstrun.sh'), lines.join('\n'));
    }
    return 'imager-firstrun';
  }
  if (!cmdline.includes('edgefleet/firstboot.sh')) {
    if (/\bsystemd\.run=/.test(cmdline))
      throw new FlashError(
        'FLASH_BOOT_INVALID',
        'cmdline.txt already runs another first-boot script (systemd.run=…)',
      );
    await writeFile(join(dir, 'cmdline.txt'), `${cmdline.trim()} ${HOOK}\n`);
  }
  return 'cmdline';
}
