/**
 * The device profile schema: what a kind of device is (architecture, memory, accelerators), what it
 * can run, which artifact it prefers, the largest model it should take, and how to recognise it.
 * Every object is strict, so a typo in a profile file is an error instead of a silently ignored key.
 */
import { artifactEntry, artifactTargets } from '@edgefleet/bundle';
import { z } from 'zod';

/** Runtimes a device kind can have; artifacts name `onnxruntime` or `tflite`, the device side is finer. */
export const runtimeNames = ['onnxruntime-node', 'onnxruntime-web', 'tflite', 'tflite-edgetpu'] as const;
export type RuntimeName = (typeof runtimeNames)[number];

export const precisions = artifactEntry.shape.precision.options;

const targetOrAny = [...artifactTargets, '*'] as string[];
const precisionOrAny = [...precisions, '*'] as string[];

/** `target/precision`, either side `*`: `edgetpu/*`, `cpu/int8`, `*\/fp32`. */
export const preferenceEntry = z
  .string()
  .regex(/^[a-z0-9*-]+\/[a-z0-9*-]+$/, 'expected "target/precision", e.g. "cpu/int8" or "edgetpu/*"')
  .refine((s) => targetOrAny.includes(s.split('/')[0] ?? ''), {
    message: `unknown target; use one of ${targetOrAny.join(', ')}`,
  })
  .refine((s) => precisionOrAny.includes(s.split('/')[1] ?? ''), {
    message: `unknown precision; use one of ${precisionOrAny.join(', ')}`,
  });

const regexText = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

const hex = z.string().regex(/^0x[0-9a-f]+$/, 'expected a lowercase hex number like "0x11"');
const usbId = z.string().regex(/^[0-9a-f]{4}:[0-9a-f]{4}$/, 'expected "vendor:product" in lowercase hex');
const absolutePath = z.string().regex(/^\/[A-Za-z0-9_./,-]+$/, 'expected an absolute path');

/** Evidence that identifies the board; any one item is enough. */
export const boardRule = z
  .object({
    /** Regexes over the device-tree model (`/proc/device-tree/model`, or cpuinfo's `Model:` line). */
    model: z.array(regexText).max(16).optional(),
    /** Exact entries of `/proc/device-tree/compatible`. */
    compatible: z.array(z.string().min(1).max(128)).max(16).optional(),
    /** Raspberry Pi board types from the new-style cpuinfo `Revision` code (bits 4–11). */
    piRevisionTypes: z.array(hex).max(16).optional(),
    /** A file whose contents match a regex, e.g. `/etc/nv_tegra_release` with `BOARD: t210ref`. */
    files: z
      .array(z.object({ path: absolutePath, pattern: regexText }).strict())
      .max(8)
      .optional(),
  })
  .strict()
  .refine((b) => Object.values(b).some((v) => Array.isArray(v) && v.length > 0), {
    message: 'a board rule needs at least one of model, compatible, piRevisionTypes, files',
  });

/** Evidence of an accelerator; any one item is enough. */
export const acceleratorRule = z
  .object({
    usbIds: z.array(usbId).max(16).optional(),
    /** Device nodes, e.g. `/dev/apex_0` for an Edge TPU on PCIe. */
    devices: z.array(absolutePath).max(16).optional(),
  })
  .strict()
  .refine((a) => (a.usbIds?.length ?? 0) + (a.devices?.length ?? 0) > 0, {
    message: 'an accelerator rule needs usbIds or devices',
  });

/** How to recognise this kind of device. Every section given must match; the most specific profile wins. */
export const detectRule = z
  .object({
    platform: z
      .array(z.enum(['linux', 'browser']))
      .min(1)
      .max(4),
    arch: z
      .array(z.enum(['arm64', 'x64']))
      .min(1)
      .max(4)
      .optional(),
    board: boardRule.optional(),
    accelerator: acceleratorRule.optional(),
    /** Capabilities the device reports itself (browsers: `webgpu`). */
    features: z.array(z.string().min(1).max(64)).max(8).optional(),
  })
  .strict();
export type DetectRule = z.infer<typeof detectRule>;

export const accelerator = z
  .object({
    kind: z.enum(['edgetpu', 'webgpu']),
    name: z.string().min(1).max(128),
    attach: z.enum(['usb', 'pcie', 'soc', 'gpu']),
    /**
     * `builtin`: every device of this kind has it, trust the profile. `detected`: only when the
     * device's facts show it (a Coral USB stick on a generic Linux box, for example).
     */
    presence: z.enum(['builtin', 'detected']),
  })
  .strict();
export type Accelerator = z.infer<typeof accelerator>;

export const deviceProfile = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lowercase letters, digits and dashes'),
    name: z.string().min(1).max(128),
    description: z.string().max(1000).optional(),
    kind: z.enum(['linux', 'browser']),
    /** `any` for browsers: the artifact runs on whatever CPU the browser has. */
    arch: z.enum(['arm64', 'x64', 'any']),
    cpu: z.string().max(200).optional(),
    memory: z
      .object({
        minMb: z.number().int().positive(),
        maxMb: z.number().int().positive(),
      })
      .strict()
      .refine((m) => m.minMb <= m.maxMb, { message: 'minMb must not exceed maxMb', path: ['minMb'] }),
    accelerators: z.array(accelerator).max(4),
    runtimes: z.array(z.enum(runtimeNames)).min(1).max(runtimeNames.length),
    /** Capabilities every device of this kind has, matched against artifacts' `requires`. */
    features: z.array(z.string().min(1).max(64)).max(16).default([]),
    /** Artifacts in this order; an artifact no entry matches is not sent to this kind of device. */
    preference: z.array(preferenceEntry).min(1).max(32),
    limits: z
      .object({
        /** The largest artifact this kind of device should take. */
        maxModelBytes: z.number().int().positive(),
        /** When the device reports its memory: at most this share of it per artifact. */
        maxModelMemoryFraction: z.number().gt(0).max(1),
      })
      .strict(),
    detect: detectRule.optional(),
    notes: z.array(z.string().min(1).max(500)).max(16).default([]),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.kind === 'browser' && p.arch !== 'any')
      ctx.addIssue({ code: 'custom', path: ['arch'], message: 'browser profiles use arch "any"' });
    if (p.kind === 'linux' && p.arch === 'any')
      ctx.addIssue({ code: 'custom', path: ['arch'], message: 'linux profiles name arm64 or x64' });
    const hasEdgeTpu = p.accelerators.some((a) => a.kind === 'edgetpu');
    if (hasEdgeTpu !== p.runtimes.includes('tflite-edgetpu'))
      ctx.addIssue({
        code: 'custom',
        path: ['runtimes'],
        message: 'an Edge TPU accelerator and the tflite-edgetpu runtime go together',
      });
    const seen = new Set<string>();
    p.preference.forEach((entry, i) => {
      if (seen.has(entry))
        ctx.addIssue({ code: 'custom', path: ['preference', i], message: `"${entry}" is listed twice` });
      seen.add(entry);
    });
  });
export type DeviceProfile = z.infer<typeof deviceProfile>;
export type DeviceProfileInput = z.input<typeof deviceProfile>;
