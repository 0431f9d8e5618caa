/**
 * The raw facts detection works from, and small parsers for them. Everything here is pure: the
 * agent's adapter (agent/src/detect.ts) reads the files; tests feed recorded ones.
 */

/** What a device says about itself, as read from the OS (or, for browsers, from the SDK). */
export interface HardwareFacts {
  /** `linux`, `browser`, … (Node's `process.platform` on devices). */
  platform: string;
  /** Node's `process.arch` (`arm64`, `x64`, `arm` on a 32-bit OS). */
  arch: string;
  memTotalMb?: number;
  cpuCores?: number;
  /** `/proc/device-tree/model` without the trailing NUL. */
  deviceTreeModel?: string;
  /** `/proc/device-tree/compatible`, split at NULs. */
  deviceTreeCompatible?: string[];
  /** `/proc/cpuinfo` as text. */
  cpuinfo?: string;
  /** USB devices present, as lowercase `vendor:product`. */
  usbIds?: string[];
  /** Device nodes present among the ones profiles ask about (`/dev/apex_0`). */
  devices?: string[];
  /** Contents of files profiles ask about (`/etc/nv_tegra_release`), by absolute path. */
  files?: Record<string, string>;
  /** Capabilities the device reports itself; browsers list `webgpu` and adapter features (`shader-f16`). */
  features?: string[];
}

/** The Coral USB Accelerator before (Global Unichip) and after (Google) libedgetpu loads its firmware. */
export const CORAL_USB_IDS = { beforeFirmware: '1a6e:089a', afterFirmware: '18d1:9302' } as const;
/** The Edge TPU's device node with the gasket/apex driver (Dev Board, M.2 and PCIe cards). */
export const EDGETPU_DEVICE_NODE = '/dev/apex_0';

export interface CpuinfoSummary {
  /** The `Model` line Raspberry Pi kernels add. */
  model?: string;
  hardware?: string;
  /** The `Revision` field, lowercase hex without `0x`. */
  revision?: string;
  /** Distinct `CPU part` values (`0xd08` is Cortex-A72). */
  cpuParts: string[];
  processors: number;
}

/** Read the fields detection uses out of `/proc/cpuinfo`. */
export function parseCpuinfo(text: string): CpuinfoSummary {
  const summary: CpuinfoSummary = { cpuParts: [], processors: 0 };
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'processor') summary.processors += 1;
    else if (key === 'model' && value) summary.model = value;
    else if (key === 'hardware' && value) summary.hardware = value;
    else if (key === 'revision' && /^[0-9a-f]+$/i.test(value)) summary.revision = value.toLowerCase();
    else if (key === 'cpu part' && !summary.cpuParts.includes(value.toLowerCase()))
      summary.cpuParts.push(value.toLowerCase());
  }
  return summary;
}

export interface PiRevision {
  /** Board type (bits 4–11): 0x11 is a Pi 4 B, 0x17 a Pi 5. */
  type: number;
  memoryMb: number;
  revision: number;
}

/** Decode a new-style Raspberry Pi revision code (bit 23 set); old-style codes (Pi 1/2) give undefined. */
export function decodePiRevision(code: string): PiRevision | undefined {
  if (!/^[0-9a-f]{1,8}$/i.test(code)) return undefined;
  const n = Number.parseInt(code, 16);
  if (((n >> 23) & 1) === 0) return undefined;
  return { type: (n >> 4) & 0xff, memoryMb: 256 << ((n >> 20) & 0x7), revision: n & 0xf };
}

/** Accelerators the facts show, in the names artifacts use in `requires` (`edgetpu`). */
export function acceleratorsIn(facts: HardwareFacts): string[] {
  const found = new Set<string>();
  const usb = new Set(facts.usbIds ?? []);
  if (usb.has(CORAL_USB_IDS.beforeFirmware) || usb.has(CORAL_USB_IDS.afterFirmware)) found.add('edgetpu');
  if ((facts.devices ?? []).includes(EDGETPU_DEVICE_NODE)) found.add('edgetpu');
  for (const f of facts.features ?? []) if (f === 'webgpu') found.add('webgpu');
  return [...found].sort();
}
