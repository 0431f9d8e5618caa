/** Which enrolled devices a selector names. */
import type { TargetSelector } from '@edgefleet/protocol';
import type { DeviceRecord } from '../store/devices.ts';

export function selectDevices(devices: readonly DeviceRecord[], selector: TargetSelector): DeviceRecord[] {
  const live = devices.filter((d) => d.revokedAt === null);
  if ('all' in selector) return live;
  if ('tags' in selector) return live.filter((d) => selector.tags.some((t) => d.tags.includes(t)));
  if ('devices' in selector) {
    const wanted = new Set(selector.devices);
    return live.filter((d) => wanted.has(d.id) || wanted.has(d.name));
  }
  return live.filter((d) => d.profile === selector.profile);
}

/**
 * Cumulative batch sizes ("1", "10%", "50%", "100%") to the number of devices in each batch.
 * Percentages round up, so a 10% batch of 3 devices is one device; the last batch takes the rest.
 */
export function batchSizes(batches: readonly string[], total: number): number[] {
  const sizes: number[] = [];
  let assigned = 0;
  batches.forEach((spec, i) => {
    const cumulative = spec.endsWith('%')
      ? Math.ceil((Number(spec.slice(0, -1)) / 100) * total)
      : Number(spec);
    const target = i === batches.length - 1 ? total : Math.min(total, Math.max(cumulative, assigned));
    sizes.push(target - assigned);
    assigned = target;
  });
  return sizes;
}
