/** Health samples from systeminformation: CPU load, memory, disk of the data dir, temperature, uptime. */
import { uptime } from 'node:os';
import type { TelemetrySample } from '@edgefleet/protocol';
import si from 'systeminformation';

export type HealthReading = Omit<TelemetrySample, 'seq' | 'ts' | 'inference' | 'notes'>;

/** The mount holding `dir`: the longest mount point that is a prefix of it. */
function mountFor(dir: string, mounts: { mount: string; size: number; available: number }[]) {
  return mounts
    .filter((m) => dir === m.mount || dir.startsWith(m.mount.endsWith('/') ? m.mount : `${m.mount}/`))
    .sort((a, b) => b.mount.length - a.mount.length)[0];
}

export async function readHealth(dataDir: string): Promise<HealthReading> {
  const [load, mem, disks, temp] = await Promise.all([
    si.currentLoad().catch(() => ({ currentLoad: 0 })),
    si.mem().catch(() => ({ total: 0, available: 0 })),
    si.fsSize().catch(() => []),
    si.cpuTemperature().catch(() => ({ main: null })),
  ]);
  const disk = mountFor(dataDir, disks as { mount: string; size: number; available: number }[]);
  const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
  const main = (temp as { main: number | null }).main;
  return {
    cpu_load_pct: Math.round((load.currentLoad ?? 0) * 10) / 10,
    mem_used_mb: mb(mem.total - mem.available),
    mem_total_mb: mb(mem.total),
    rss_mb: mb(process.memoryUsage.rss()),
    disk_free_mb: disk ? mb(disk.available) : 0,
    disk_total_mb: disk ? mb(disk.size) : 0,
    temp_c: typeof main === 'number' && main > -50 && main < 150 ? main : null,
    uptime_s: Math.round(uptime()),
  };
}
