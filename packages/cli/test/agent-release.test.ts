/** `edgefleet agent-release` against a real hub: publish with the files `flash --key` writes, list, deploy, status. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, publicKeyOf, sha256Hex, signManifest } from '@edgefleet/bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollDevice, startTestHub, type TestHub } from '../../../cloud-hub/test/helpers.ts';
import { releaseManifestFor } from '../../../test/support/agent-release.ts';
import { type CommandContext, UsageError } from '../src/command.ts';
import { agentReleaseCommand, defaultManifestPath } from '../src/commands/agent-release.ts';

let t: TestHub;
let dir: string;
let archive: string;
let sha256: string;

beforeAll(async () => {
  t = await startTestHub();
  dir = await mkdtemp(join(tmpdir(), 'ef-agent-release-cli-'));
  const key = await generateSigningKey();
  expect(
    (await t.api('POST', '/api/v1/keys', { name: 'release', publicKey: publicKeyOf(key).publicKey })).status,
  ).toBe(201);
  // What `edgefleet flash --key` leaves in --out: the archive, its manifest and the signature.
  const bytes = new Uint8Array(randomBytes(400));
  sha256 = await sha256Hex(bytes);
  const base = join(dir, 'edgefleet-agent-0.9.0-linux-x64');
  archive = `${base}.tar.gz`;
  const manifest = releaseManifestFor(bytes, '0.9.0');
  await writeFile(archive, bytes);
  await writeFile(`${base}.release-manifest.json`, manifest);
  await writeFile(`${base}.release-manifest.json.sig`, JSON.stringify(await signManifest(manifest, key)));
});
afterAll(async () => {
  await t?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Run the command as main.ts would, collecting what it prints. */
async function run(args: string[], values: Record<string, string> = {}, json = true) {
  const out: string[] = [];
  const results: unknown[] = [];
  const ctx: CommandContext = {
    values: { hub: t.hub.url, token: t.adminToken, json, ...values },
    positionals: args,
    json,
    verbose: false,
    print: (line = '') => {
      if (!json) out.push(line);
    },
    printJson: (value) => {
      if (json) results.push(value);
    },
    progress: () => {},
  };
  const code = await agentReleaseCommand.run(ctx);
  return { code, out: out.join('\n'), result: results[0] as never };
}

describe('edgefleet agent-release', () => {
  it('names the manifest beside the archive as flash writes it', () => {
    expect(defaultManifestPath('/o/edgefleet-agent-0.2.0-linux-arm64.tar.gz')).toBe(
      '/o/edgefleet-agent-0.2.0-linux-arm64.release-manifest.json',
    );
    expect(defaultManifestPath('/o/agent.zip')).toBeUndefined();
  });

  it('refuses an archive without its signed manifest, saying how to sign it', async () => {
    const lonely = join(dir, 'edgefleet-agent-1.0.0-linux-x64.tar.gz');
    await writeFile(lonely, 'x');
    await expect(run(['publish', lonely])).rejects.toThrow(UsageError);
    await expect(run(['publish', lonely])).rejects.toThrow(/--key/);
    await expect(run(['publish', join(dir, 'agent.bin')])).rejects.toThrow(/--manifest FILE/);
  });

  it('publishes, lists, deploys and follows a release', async () => {
    const published = await run(['publish', archive]);
    expect(published.code).toBe(0);
    expect(published.result).toMatchObject({ version: '0.9.0', arch: 'x64', sha256 });
    // Publishing the same archive again is harmless.
    expect((await run(['publish', archive])).code).toBe(0);

    const listed = await run(['list'], {}, false);
    expect(listed.out).toMatch(/VERSION\s+ARCH\s+SIZE\s+SHA256\s+PUBLISHED/);
    expect(listed.out).toContain(`0.9.0    x64`);
    expect(listed.out).toContain(sha256.slice(0, 12));

    const device = await enrollDevice(t, 'cli-upd', ['cli-upd']);
    await expect(run(['deploy', '0.9.0'])).rejects.toThrow(/--to is required/);
    await expect(run(['deploy', '0.9.0'], { to: 'nonsense' })).rejects.toThrow(/invalid target/);
    const deployed = await run(['deploy', '0.9.0'], { to: 'tag:cli-upd' });
    expect(deployed.result).toMatchObject({
      deploymentId: expect.stringMatching(/^agt_/),
      devices: [{ deviceId: device.deviceId, name: 'cli-upd', arch: 'x64', state: 'assigned' }],
    });

    const status = await run(['status', '0.9.0'], {}, false);
    expect(status.out).toContain('agent 0.9.0 for x64');
    expect(status.out).toMatch(/cli-upd\s+\S+\s+x64\s+-\s+pending/);
    await expect(run(['status', '8.8.8'])).rejects.toThrow(/not found/);
  });

  it('asks which subcommand', async () => {
    await expect(run([])).rejects.toThrow(/publish, list, deploy or status/);
  });
});
