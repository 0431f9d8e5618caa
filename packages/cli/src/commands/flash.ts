/**
 * `edgefleet flash`: a self-contained agent package for a Raspberry Pi, Coral board or any Linux
 * box (arm64 or x64), and the files that make a fresh Raspberry Pi OS card install and enroll it on
 * first boot. Works offline once the project is installed (see docs/flashing.md).
 */
import { type Command, optionalString, requireString, UsageError } from '../command.ts';
import { loadSigningKey } from './keys.ts';

const MB = 1024 * 1024;

export const flashCommand: Command = {
  name: 'flash',
  summary: 'Build an installable agent package (arm64/x64) and first-boot files for a Raspberry Pi OS card',
  usage:
    'flash --arch arm64|x64 --hub URL (or EDGEFLEET_HUB) --enroll-token T --out DIR [--name N] [--profile ID] [--boot /media/USER/bootfs] [--key signing-key.json] [--release-version V] [--prepare]',
  options: {
    arch: { type: 'string' },
    'enroll-token': { type: 'string' },
    out: { type: 'string' },
    hub: { type: 'string' },
    name: { type: 'string' },
    profile: { type: 'string' },
    boot: { type: 'string' },
    key: { type: 'string' },
    'release-version': { type: 'string' },
    prepare: { type: 'boolean', default: false },
  },
  async run(ctx) {
    const arch = requireString(ctx, 'arch');
    if (arch !== 'arm64' && arch !== 'x64')
      throw new UsageError(`--arch must be arm64 or x64, got "${arch}"`);
    const hub = optionalString(ctx, 'hub') ?? process.env.EDGEFLEET_HUB;
    if (!hub)
      throw new UsageError('--hub is required (or set EDGEFLEET_HUB): the URL devices reach the hub at');
    const keyPath = optionalString(ctx, 'key');
    const { flash } = await import('../../../../scripts/flash/index.ts');
    ctx.progress(`building the linux-${arch} agent package…`);
    const result = await flash({
      arch,
      hub,
      enrollToken: requireString(ctx, 'enroll-token'),
      out: requireString(ctx, 'out'),
      ...(optionalString(ctx, 'name') ? { name: optionalString(ctx, 'name') as string } : {}),
      ...(optionalString(ctx, 'profile') ? { profile: optionalString(ctx, 'profile') as string } : {}),
      ...(optionalString(ctx, 'boot') ? { boot: optionalString(ctx, 'boot') as string } : {}),
      ...(keyPath ? { key: await loadSigningKey(keyPath) } : {}),
      ...(optionalString(ctx, 'release-version')
        ? { version: optionalString(ctx, 'release-version') as string }
        : {}),
      prepare: ctx.values.prepare === true,
    });
    ctx.progress('');
    ctx.printJson(result);
    ctx.print(`agent ${result.release.version} for linux-${arch} (Node ${result.release.node})`);
    ctx.print(`  package   ${result.packageDir}   (on the device: sudo ./install.sh --env enroll.env)`);
    ctx.print(`  archive   ${result.archive}   ${(result.archiveBytes / MB).toFixed(0)} MB`);
    ctx.print(
      keyPath
        ? `  update    edgefleet agent-release publish ${result.archive}   (self-update; docs/self-update.md)`
        : '  update    not signed: pass --key to publish this archive as a self-update',
    );
    ctx.print(
      `  boot      ${result.bootDir}   (copy onto the boot partition of a fresh Raspberry Pi OS card)`,
    );
    for (const w of result.warnings) process.stderr.write(`edgefleet flash: warning: ${w}\n`);
    if (result.bootMechanism)
      ctx.print(`  written to ${optionalString(ctx, 'boot')}, first boot via ${result.bootMechanism}`);
    return 0;
  },
};
