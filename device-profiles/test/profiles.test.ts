import { readdirSync, readFileSync } from 'node:fs';
import {
  builtinProfileFiles,
  builtinProfiles,
  getProfile,
  ProfileError,
  parseProfilesJson,
  resolveProfile,
  validateProfiles,
} from '@edgefleet/device-profiles';
import { describe, expect, it } from 'vitest';

const profilesDir = new URL('../profiles/', import.meta.url).pathname;
const required = [
  'rpi3',
  'rpi4',
  'rpi5',
  'rpi-coral-usb',
  'coral-dev-board',
  'coral-dev-board-mini',
  'jetson-nano',
  'linux-x64',
  'linux-arm64',
  'browser-webgpu',
  'browser-wasm',
];

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProfileError);
    return (error as ProfileError).issues;
  }
  throw new Error('expected a ProfileError');
}

describe('built-in device profiles', () => {
  it('every profile file on disk is valid and shipped', () => {
    const files = readdirSync(profilesDir).filter((f) => f.endsWith('.json'));
    const fromDisk = Object.fromEntries(
      files.map((f) => [f, JSON.parse(readFileSync(`${profilesDir}${f}`, 'utf8'))]),
    );
    expect(
      validateProfiles(fromDisk)
        .map((p) => p.id)
        .sort(),
    ).toEqual(builtinProfiles.map((p) => p.id).sort());
    expect(Object.keys(builtinProfileFiles).sort()).toEqual(files.sort());
  });

  it('covers every device kind the project supports, each with what the hub needs', () => {
    expect(builtinProfiles.map((p) => p.id)).toEqual(expect.arrayContaining(required));
    for (const p of builtinProfiles) {
      expect(p.runtimes.length, p.id).toBeGreaterThan(0);
      expect(p.preference.length, p.id).toBeGreaterThan(0);
      expect(p.limits.maxModelBytes, p.id).toBeGreaterThan(0);
      expect(p.memory.minMb, p.id).toBeLessThanOrEqual(p.memory.maxMb);
      expect(p.detect, `${p.id} can be detected`).toBeDefined();
    }
  });

  it('Edge TPU profiles prefer Edge TPU artifacts and CPU-only ones never list them first', () => {
    for (const p of builtinProfiles) {
      const tpu = p.accelerators.some((a) => a.kind === 'edgetpu');
      if (tpu) expect(p.preference[0], p.id).toBe('edgetpu/*');
      else
        expect(
          p.preference.some((e) => e.startsWith('edgetpu/')),
          p.id,
        ).toBe(false);
    }
  });

  it('getProfile finds ids and refuses unknown ones with a typed error', () => {
    expect(getProfile('rpi4').name).toMatch(/Raspberry Pi 4/);
    expect(() => getProfile('rpi9')).toThrow(/unknown device profile "rpi9"/);
    try {
      getProfile('rpi9');
    } catch (error) {
      expect((error as ProfileError).code).toBe('PROFILE_UNKNOWN');
    }
  });

  it('resolveProfile falls back to the generic profile for unknown or missing ids, and says so', () => {
    expect(resolveProfile('rpi5').profile?.id).toBe('rpi5');
    const unknown = resolveProfile('my-board', { platform: 'linux', arch: 'arm64' });
    expect(unknown.profile?.id).toBe('linux-arm64');
    expect(unknown.reason).toMatch(/unknown profile "my-board"; using linux-arm64/);
    expect(resolveProfile(null, { platform: 'browser', arch: 'wasm' }).profile?.id).toBe('browser-wasm');
    const none = resolveProfile(null, { platform: 'linux', arch: 'arm' });
    expect(none.profile).toBeUndefined();
    expect(none.reason).toMatch(/no generic profile for linux\/arm/);
  });
});

describe('profile validation', () => {
  const good = JSON.parse(readFileSync(`${profilesDir}rpi4.json`, 'utf8'));

  it('lists every problem at once, unknown keys included', () => {
    const bad = {
      ...good,
      colour: 'red',
      arch: 'mips',
      preference: ['cpu/int8', 'gpu/fp16', 'cpu/int4', 'cpu/int8'],
      limits: { maxModelBytes: -1, maxModelMemoryFraction: 2, maxBatch: 4 },
      detect: { ...good.detect, board: { model: ['(unclosed'] } },
    };
    const issues = issuesOf(() => validateProfiles({ 'rpi4.json': bad }));
    const text = issues.map((i) => `${i.path}: ${i.message}`);
    expect(text).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\(root\): unknown key\(s\): colour/),
        expect.stringMatching(/^arch: /),
        expect.stringMatching(/^preference\.1: unknown target/),
        expect.stringMatching(/^preference\.2: unknown precision/),
        expect.stringMatching(/^limits\.maxModelBytes: /),
        expect.stringMatching(/^limits\.maxModelMemoryFraction: /),
        expect.stringMatching(/^limits: unknown key\(s\): maxBatch/),
        expect.stringMatching(/^detect\.board\.model\.0: not a valid regular expression/),
      ]),
    );
    expect(issues.every((i) => i.source === 'rpi4.json')).toBe(true);
  });

  it('reports problems across files together: duplicate ids, ids that differ from file names', () => {
    const issues = issuesOf(() =>
      validateProfiles({
        'rpi4.json': good,
        'rpi4-copy.json': good,
        'broken.json': { id: 'broken' },
      }),
    );
    expect(issues.map((i) => `${i.source} ${i.path}: ${i.message}`)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^rpi4-copy\.json id: id "rpi4" differs from the file name/),
        expect.stringMatching(/^rpi4-copy\.json id: id "rpi4" is already used by rpi4\.json/),
        expect.stringMatching(/^broken\.json name: /),
        expect.stringMatching(/^broken\.json runtimes: /),
      ]),
    );
  });

  it('checks consistency: an Edge TPU needs its runtime, browsers use arch any, no duplicate preferences', () => {
    const issues = issuesOf(() =>
      validateProfiles({
        pa: { ...good, id: 'pa', runtimes: ['onnxruntime-node', 'tflite-edgetpu'] },
        pb: { ...good, id: 'pb', kind: 'browser' },
        pc: { ...good, id: 'pc', preference: ['cpu/int8', 'cpu/int8'] },
      }),
    );
    expect(issues.map((i) => `${i.source} ${i.path}: ${i.message}`)).toEqual([
      'pa runtimes: an Edge TPU accelerator and the tflite-edgetpu runtime go together',
      'pb arch: browser profiles use arch "any"',
      'pc preference.1: "cpu/int8" is listed twice',
    ]);
  });

  it('parses profile JSON text and turns broken JSON into a typed error', () => {
    expect(parseProfilesJson(JSON.stringify({ ...good, id: 'my-pi' }), 'custom')[0]?.id).toBe('my-pi');
    expect(() => parseProfilesJson('{"id": ', 'custom.json')).toThrow(/custom\.json: not JSON/);
  });
});
