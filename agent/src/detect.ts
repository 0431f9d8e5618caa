/**
 * What this device is: the Node adapter that reads the OS facts detection needs (device tree,
 * cpuinfo, USB ids, device nodes, release files, memory) and hands them to the pure rules of
 * @edgefleet/device-profiles. `root` lets tests point it at a recorded file tree.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { cpus, hostname, arch as osArch, platform as osPlatform, totalmem } from 'node:os';
import { join } from 'node:path';
import {
  acceleratorsIn,
  builtinProfiles,
  type Detection,
  type DeviceProfile,
  detectProfile as detectFromFacts,
  EDGETPU_DEVICE_NODE,
  type HardwareFacts,
} from '@edgefleet/device-profiles';
import { type DeviceFacts, EDGEFLEET_VERSION } from '@edgefleet/protocol';

export interface SystemFacts {
  platform: string;
  arch: string;
  memTotalMb: number;
  cpuCores: number;
}

export interface GatherOptions {
  /** Where `/proc`, `/sys`, `/dev` and `/etc` are; `/` on a device, a fixture directory in tests. */
  root?: string;
  /** Platform, arch, memory and cores; from Node by default. */
  system?: () => Promise<SystemFacts>;
  profiles?: readonly DeviceProfile[];
}

async function liveSystem(): Promise<SystemFacts> {
  // os.totalmem() is MemTotal of /proc/meminfo on Linux, the figure systeminformation's mem().total
  // gave; the agent no longer loads systeminformation (its sources cost an idle agent several MB).
  // process.arch, not the kernel's: a 64-bit kernel under a 32-bit userland still runs 32-bit Node.
  return {
    platform: osPlatform(),
    arch: osArch(),
    memTotalMb: Math.round(totalmem() / 1024 / 1024),
    cpuCores: cpus().length,
  };
}

const text = (path: string) => readFile(path, 'utf8').catch(() => undefined);

async function usbIds(root: string): Promise<string[]> {
  const dir = join(root, 'sys/bus/usb/devices');
  const ids: string[] = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    const vendor = await text(join(dir, name, 'idVendor'));
    const product = await text(join(dir, name, 'idProduct'));
    if (vendor && product) ids.push(`${vendor.trim().toLowerCase()}:${product.trim().toLowerCase()}`);
  }
  return [...new Set(ids)];
}

/** The device nodes and files the profiles' detection rules ask about. */
function probes(profiles: readonly DeviceProfile[]): { devices: string[]; files: string[] } {
  const devices = new Set<string>([EDGETPU_DEVICE_NODE]);
  const files = new Set<string>();
  for (const p of profiles) {
    for (const d of p.detect?.accelerator?.devices ?? []) devices.add(d);
    for (const f of p.detect?.board?.files ?? []) files.add(f.path);
  }
  return { devices: [...devices], files: [...files] };
}

/** Read every fact detection uses. Missing files are simply absent facts, never errors. */
export async function gatherHardwareFacts(options: GatherOptions = {}): Promise<HardwareFacts> {
  const root = options.root ?? '/';
  const system = await (options.system ?? liveSystem)();
  const wanted = probes(options.profiles ?? builtinProfiles);
  const model = await text(join(root, 'proc/device-tree/model'));
  const compatible = await text(join(root, 'proc/device-tree/compatible'));
  const cpuinfo = await text(join(root, 'proc/cpuinfo'));
  const files: Record<string, string> = {};
  for (const f of wanted.files) {
    const content = await text(join(root, f));
    if (content !== undefined) files[f] = content;
  }
  return {
    ...system,
    ...(model ? { deviceTreeModel: model.replace(/\0/g, '').trim() } : {}),
    ...(compatible ? { deviceTreeCompatible: compatible.split('\0').filter((c) => c.length > 0) } : {}),
    ...(cpuinfo ? { cpuinfo } : {}),
    usbIds: await usbIds(root),
    devices: wanted.devices.filter((d) => existsSync(join(root, d))),
    files,
  };
}

/** The enrollment facts (protocol shape) for gathered hardware facts. */
export function enrollmentFacts(hw: HardwareFacts): DeviceFacts {
  const model = hw.deviceTreeModel;
  return {
    arch: hw.arch,
    platform: hw.platform,
    hostname: hostname(),
    ...(model ? { model: model.slice(0, 255) } : {}),
    ...(hw.memTotalMb !== undefined ? { memTotalMb: hw.memTotalMb } : {}),
    ...(hw.cpuCores !== undefined ? { cpuCores: hw.cpuCores } : {}),
    accelerators: acceleratorsIn(hw),
    agentVersion: EDGEFLEET_VERSION,
  };
}

export interface DeviceDetection {
  facts: DeviceFacts;
  hardware: HardwareFacts;
  detection: Detection;
}

/** Gather the facts and detect the profile, with the evidence. */
export async function detectDevice(options: GatherOptions = {}): Promise<DeviceDetection> {
  const hardware = await gatherHardwareFacts(options);
  return {
    hardware,
    facts: enrollmentFacts(hardware),
    detection: detectFromFacts(hardware, options.profiles ?? builtinProfiles),
  };
}

// gatherFacts() keeps its full detection here, so detectProfile(facts) can use the raw facts.
const detections = new WeakMap<DeviceFacts, Detection>();

/** Facts for enrollment (the agent's hook). */
export async function gatherFacts(options: GatherOptions = {}): Promise<DeviceFacts> {
  const { facts, detection } = await detectDevice(options);
  detections.set(facts, detection);
  return facts;
}

/** Detection from enrollment facts alone, when the raw facts are gone (model string, arch, accelerators). */
export function detectFromDeviceFacts(facts: DeviceFacts): Detection {
  return detectFromFacts({
    platform: facts.platform,
    arch: facts.arch,
    ...(facts.memTotalMb !== undefined ? { memTotalMb: facts.memTotalMb } : {}),
    ...(facts.model ? { deviceTreeModel: facts.model } : {}),
    ...(facts.accelerators.includes('edgetpu') ? { devices: [EDGETPU_DEVICE_NODE] } : {}),
  });
}

/**
 * The profile id for these facts (the agent's hook for `--profile auto`): the detected profile, or
 * `platform-arch` when none fits (e.g. `linux-arm` on a 32-bit OS) so the hub still sees something.
 */
export function detectProfile(facts: DeviceFacts): string {
  const detection = detections.get(facts) ?? detectFromDeviceFacts(facts);
  return detection.profileId ?? `${facts.platform}-${facts.arch}`;
}
