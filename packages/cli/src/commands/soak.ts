/**
 * `edgefleet soak`: many simulated agents with real MQTT connections against one hub for minutes,
 * sending telemetry; reports message rate, ingest lag, API latency, and whether anything was lost.
 * Not part of `npm test`: it runs for as long as you ask.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command, optionalInt, optionalString } from '../command.ts';
import { connectFleet, enrollFleet, percentile, pool, sendTelemetry } from '../soak/simulated-fleet.ts';
import { formatTable } from '../table.ts';

export const soakCommand: Command = {
  name: 'soak',
  summary:
    'Load-test a hub with simulated agents over real MQTT: message rate, ingest lag, API latency, losses',
  usage: 'soak [--agents 1000] [--minutes 10] [--interval 10] [--hub URL --token T | --db URL] [--json]',
  options: {
    agents: { type: 'string' },
    minutes: { type: 'string' },
    interval: { type: 'string' },
    hub: { type: 'string' },
    token: { type: 'string' },
    db: { type: 'string' },
  },
  async run(ctx) {
    const agents = optionalInt(ctx, 'agents') ?? 1000;
    const seconds = (Number(optionalString(ctx, 'minutes') ?? '10') || 10) * 60;
    const intervalMs = (optionalInt(ctx, 'interval') ?? 10) * 1000;
    let hubUrl = optionalString(ctx, 'hub');
    let token = optionalString(ctx, 'token') ?? process.env.EDGEFLEET_TOKEN;
    let stopHub: (() => Promise<void>) | undefined;
    let hubRss: (() => number) | undefined;
    if (!hubUrl) {
      const { startHub } = await import('@edgefleet/hub');
      const pino = (await import('pino')).default;
      const dir = await mkdtemp(join(tmpdir(), 'edgefleet-soak-'));
      token = 'efa_soak_admin';
      const db = optionalString(ctx, 'db');
      const hub = await startHub({
        port: 0,
        mqttPort: 0,
        host: '127.0.0.1',
        dataDir: dir,
        adminToken: token,
        logger: pino({ level: 'warn' }),
        ...(db ? { db } : {}),
      });
      hubUrl = hub.url;
      hubRss = () => process.memoryUsage.rss() / 1048576;
      stopHub = async () => {
        await hub.stop();
        await rm(dir, { recursive: true, force: true });
      };
    }
    if (!token) throw new Error('--token (or EDGEFLEET_TOKEN) is needed with --hub');

    ctx.progress(`enrolling ${agents} simulated agents…`);
    const fleet = await connectFleet(await enrollFleet(hubUrl, token, agents));
    ctx.progress(
      `${agents} agents connected; sending telemetry every ${intervalMs / 1000} s for ${seconds} s…`,
    );

    const apiLatencies: number[] = [];
    const started = Date.now();
    const deadline = started + seconds * 1000;
    let running = true;
    // Each device sends on its own schedule, spread over the interval so load is even.
    const senders = fleet.map(async (d, i) => {
      await new Promise((r) => setTimeout(r, (i / fleet.length) * intervalMs));
      while (running && Date.now() < deadline) {
        const at = Date.now();
        await sendTelemetry(d).catch(() => undefined);
        await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - at))));
      }
    });
    const probe = (async () => {
      while (running && Date.now() < deadline) {
        const t0 = performance.now();
        await fetch(`${hubUrl}/api/v1/devices`, { headers: { authorization: `Bearer ${token}` } }).then((r) =>
          r.arrayBuffer(),
        );
        apiLatencies.push(performance.now() - t0);
        const elapsed = Math.round((Date.now() - started) / 1000);
        ctx.progress(
          `${elapsed}/${seconds} s · ${fleet.reduce((s, d) => s + d.sent, 0)} messages sent · GET /devices ${Math.round(apiLatencies.at(-1) ?? 0)} ms`,
        );
        await new Promise((r) => setTimeout(r, 5000));
      }
    })();
    await Promise.all(senders);
    running = false;
    await probe;
    const sent = fleet.reduce((s, d) => s + d.sent + (d.statsSent ?? 0), 0);
    const elapsedS = (Date.now() - started) / 1000;

    ctx.progress('checking what the hub stored…');
    const lags: number[] = [];
    const results = await pool(fleet, 16, async (d) => {
      const r = await fetch(`${hubUrl}/api/v1/devices/${d.deviceId}/telemetry?limit=10000`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const { samples } = (await r.json()) as { samples: { seq: number; ts: string; received_at: string }[] };
      for (const s of samples) lags.push(Date.parse(s.received_at) - Date.parse(s.ts));
      const seqs = new Set(samples.map((s) => s.seq));
      return {
        missing: d.sent - samples.filter((s) => s.seq <= d.sent).length,
        duplicates: samples.length - seqs.size,
      };
    });
    await pool(fleet, 50, (d) => d.client.endAsync());
    const report = {
      agents,
      telemetrySent: fleet.reduce((s, d) => s + d.sent, 0),
      statsWindowsSent: fleet.reduce((s, d) => s + (d.statsSent ?? 0), 0),
      seconds: Math.round(elapsedS),
      messagesSent: sent,
      messagesPerSecond: Math.round(sent / elapsedS),
      missing: results.reduce((s, r) => s + r.missing, 0),
      duplicates: results.reduce((s, r) => s + r.duplicates, 0),
      ingestLagMs: { p50: percentile(lags, 0.5), p99: percentile(lags, 0.99), max: percentile(lags, 1) },
      apiLatencyMs: { p50: percentile(apiLatencies, 0.5), p99: percentile(apiLatencies, 0.99) },
      ...(hubRss ? { hubProcessRssMb: Math.round(hubRss()) } : {}),
    };
    await stopHub?.();
    ctx.progress('');
    ctx.printJson(report);
    ctx.print(
      formatTable(
        [
          ['agents', report.agents],
          ['duration', `${report.seconds} s`],
          ['messages sent', report.messagesSent],
          ['messages/s', report.messagesPerSecond],
          ['lost / duplicated', `${report.missing} / ${report.duplicates}`],
          ['ingest lag p50 / p99', `${report.ingestLagMs.p50} / ${report.ingestLagMs.p99} ms`],
          [
            'GET /devices p50 / p99',
            `${report.apiLatencyMs.p50?.toFixed(1)} / ${report.apiLatencyMs.p99?.toFixed(1)} ms`,
          ],
        ] as [string, string | number][],
        [
          { header: 'SOAK', value: (r) => r[0] },
          { header: '', value: (r) => r[1], align: 'right' },
        ],
      ),
    );
    return report.missing === 0 && report.duplicates === 0 ? 0 : 1;
  },
};
