/**
 * Health samples: CPU load, memory, disk of the data dir, temperature, uptime. Read straight from
 * /proc, /sys and statfs, never through a shell: systeminformation runs `df`, `cat` and `sensors`
 * in child shells for these, which on every interval costs a fork of the whole agent. Twenty
 * agents sampling each second spent more CPU spawning shells than serving models. (It is still
 * used once, at enrollment, for the device's facts.)
 */
import { readdir, readFile, statfs } from 'node:fs/promises';
import { freemem, totalmem, uptime } from 'node:os';
import { join } from 'node:path';
import type { TelemetrySample } from '@edgefleet/protocol';

export type HealthReading = Omit<TelemetrySample, 'seq' | 'ts' | 'inference' | 'notes'>;

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** CPU busy share since the previous call (since boot on the first), from /proc/stat's `cpu` line. */
let lastCpu: { busy: number; total: number } | undefined;
async function cpuLoadPct(): Promise<number> {
  const text = await readFile('/proc/stat', 'utf8').catch(() => '');
  const fields = text.split('\n', 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  if (fields.length < 4 || fields.some((f) => !Number.isFinite(f))) return 0;
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  const total = fields.reduce((s, f) => s + f, 0);
  const now = { busy: total - idle, total };
  const before = lastCpu ?? { busy: 0, total: 0 };
  lastCpu = now;
  const dTotal = now.total - before.total;
  return dTotal > 0 ? Math.round(((now.busy - before.busy) / dTotal) * 1000) / 10 : 0;
}

/** Memory in use: total minus MemAvailable (what the kernel could hand out without swapping). */
async function memoryUsedBytes(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const available = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  return totalmem() - (available ? Number(available[1]) * 1024 : freemem());
}

async function disk(dir: string): Promise<{ free: number; total: number }> {
  try {
    const s = await statfs(dir);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  } catch {
    return { free: 0, total: 0 };
  }
}

/** The SoC/CPU thermal zone (cpu-thermal on a Pi, x86_pkg_temp on a PC), else the first; °C or null. */
async function temperatureC(): Promise<number | null> {
  const root = '/sys/class/thermal';
  const zones = (await readdir(root).catch(() => [] as string[])).filter((z) => z.startsWith('thermal_zone'));
  const read = async (zone: string) => ({
    type: (await readFile(join(root, zone, 'type'), 'utf8').catch(() => '')).trim(),
    milli: Number((await readFile(join(root, zone, 'temp'), 'utf8').catch(() => '')).trim()),
  });
  const readings = (await Promise.all(zones.sort().map(read))).filter(
    (r) => Number.isFinite(r.milli) && r.milli !== 0,
  );
  const chosen = readings.find((r) => /cpu|soc|x86_pkg|package/i.test(r.type)) ?? readings[0];
  if (!chosen) return null;
  const c = chosen.milli / 1000;
  return c > -50 && c < 150 ? Math.round(c * 10) / 10 : null;
}

export async function readHealth(dataDir: string): Promise<HealthReading> {
  const [load, used, space, temp] = await Promise.all([
    cpuLoadPct(),
    memoryUsedBytes(),
    disk(dataDir),
    temperatureC(),
  ]);
  return {
    cpu_load_pct: load,
    mem_used_mb: mb(used),
    mem_total_mb: mb(totalmem()),
    rss_mb: mb(process.memoryUsage.rss()),
    disk_free_mb: mb(space.free),
    disk_total_mb: mb(space.total),
    temp_c: temp,
    uptime_s: Math.round(uptime()),
  };
}
