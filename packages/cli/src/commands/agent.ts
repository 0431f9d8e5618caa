import { type Command, optionalInt, optionalString, UsageError } from '../command.ts';
import { waitForSignal } from '../signals.ts';

/** Exit status after staging a self-update: not 0, so systemd's Restart=on-failure starts the launcher again. */
export const EXIT_RESTART = 75;

export const agentCommand: Command = {
  name: 'agent',
  summary: 'Run the device agent: enroll once, then follow the hub, serve models locally, report health',
  usage:
    'agent --hub URL --enroll-token T [--data DIR] [--name N] [--port 8081] [--host 127.0.0.1] [--profile auto|ID] [--mqtt-url URL] [--artifact-transport auto|http|mqtt] [--ca CA.pem] [--count N] [--probation-seconds S] [--stats-window SECONDS] [--stats-window-count N] [--releases-dir DIR]   (later starts: agent --data DIR)',
  options: {
    hub: { type: 'string' },
    'enroll-token': { type: 'string' },
    data: { type: 'string' },
    name: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    profile: { type: 'string' },
    'mqtt-url': { type: 'string' },
    'telemetry-interval': { type: 'string' },
    'probation-seconds': { type: 'string' },
    'stats-window': { type: 'string' },
    'stats-window-count': { type: 'string' },
    'artifact-transport': { type: 'string' },
    ca: { type: 'string' },
    count: { type: 'string' },
    // Set by the flashed launcher: where self-updates are staged (docs/self-update.md).
    'releases-dir': { type: 'string' },
  },
  async run(ctx) {
    const hub = optionalString(ctx, 'hub') ?? process.env.EDGEFLEET_HUB;
    const enrollToken = optionalString(ctx, 'enroll-token');
    const name = optionalString(ctx, 'name');
    const host = optionalString(ctx, 'host');
    const profile = optionalString(ctx, 'profile');
    const mqttUrl = optionalString(ctx, 'mqtt-url');
    const telemetrySeconds = optionalInt(ctx, 'telemetry-interval');
    const probationSeconds = optionalInt(ctx, 'probation-seconds');
    const statsWindowSeconds = optionalInt(ctx, 'stats-window');
    const statsWindowCount = optionalInt(ctx, 'stats-window-count');
    const transport = optionalString(ctx, 'artifact-transport') ?? 'auto';
    if (transport !== 'auto' && transport !== 'http' && transport !== 'mqtt') {
      throw new UsageError('--artifact-transport must be auto, http or mqtt');
    }
    const { startAgent } = await import('@edgefleet/agent');
    const count = optionalInt(ctx, 'count') ?? 1;
    const dataDir = optionalString(ctx, 'data') ?? 'edgefleet-agent';
    const releasesDir = optionalString(ctx, 'releases-dir');
    if (releasesDir && count > 1) throw new UsageError('--releases-dir is for a single agent, not --count');
    let requestRestart = () => {};
    const restartRequested = new Promise<void>((resolve) => {
      requestRestart = resolve;
    });
    const common = {
      ...(hub ? { hub } : {}),
      ...(enrollToken ? { enrollToken } : {}),
      ...(host ? { host } : {}),
      ...(profile ? { profile } : {}),
      ...(mqttUrl ? { mqttUrl } : {}),
      ...(telemetrySeconds ? { telemetryIntervalMs: telemetrySeconds * 1000 } : {}),
      ...(probationSeconds !== undefined ? { probationMs: probationSeconds * 1000 } : {}),
      ...(statsWindowSeconds ? { statsWindowMs: statsWindowSeconds * 1000 } : {}),
      ...(statsWindowCount ? { statsWindowCount } : {}),
      artifactTransport: transport,
      ...(optionalString(ctx, 'ca') ? { caFile: optionalString(ctx, 'ca') as string } : {}),
      ...(releasesDir ? { releasesDir, onRestartRequested: () => requestRestart() } : {}),
    } as const;
    // --count N: a fleet in one process (for trying rollouts on one machine); each agent has its own
    // data dir (DIR/agent-1…), identity, broker session and inference port.
    const start = async (i: number) => {
      const agentName = count > 1 ? `${name ?? 'agent'}-${i}` : name;
      return startAgent({
        ...common,
        dataDir: count > 1 ? `${dataDir}/agent-${i}` : dataDir,
        port: count > 1 ? 0 : (optionalInt(ctx, 'port') ?? 8081),
        ...(agentName ? { name: agentName } : {}),
        ...(count > 1
          ? {
              logger: (await import('pino'))
                .default({ level: process.env.EDGEFLEET_LOG_LEVEL ?? 'warn' })
                .child({ agent: i }),
            }
          : {}),
      });
    };
    const agents: Awaited<ReturnType<typeof startAgent>>[] = [];
    // Ten at a time: enrollment and the first health sample overlap, without a thundering herd.
    for (let i = 1; i <= count; i += 10) {
      agents.push(
        ...(await Promise.all(Array.from({ length: Math.min(10, count - i + 1) }, (_, k) => start(i + k)))),
      );
    }
    ctx.printJson(agents.map((a) => ({ deviceId: a.deviceId, name: a.name, port: a.port })));
    for (const agent of agents) {
      if (!ctx.json)
        process.stderr.write(
          `agent "${agent.name}" (${agent.deviceId}) running; local inference at http://${host ?? '127.0.0.1'}:${agent.port}/v2\n`,
        );
    }
    if (count > 1)
      process.stdout.write(
        `${JSON.stringify({ msg: 'agents ready', count, agents: agents.map((a) => ({ deviceId: a.deviceId, port: a.port })) })}\n`,
      );
    const restart = await Promise.race([
      waitForSignal().then(() => false),
      restartRequested.then(() => true),
    ]);
    for (const agent of agents) await agent.stop();
    if (restart) process.stderr.write('edgefleet: agent release staged; exiting so the launcher starts it\n');
    return restart ? EXIT_RESTART : 0;
  },
};
