import { type Command, optionalInt, optionalString } from '../command.ts';
import { hubClient, hubOptions, parseModelRef, requireTarget } from '../hub-client.ts';

export const deployCommand: Command = {
  name: 'deploy',
  summary: 'Start a rollout of a model version to devices; prints the rollout id',
  usage:
    'deploy NAME@VERSION --to all|tag:T|device:ID|profile:P [--batches 1,10%,50%,100%] [--success-threshold 95] [--max-failures 5%] [--soak SECONDS] [--device-timeout SECONDS]',
  options: {
    ...hubOptions(),
    to: { type: 'string' },
    batches: { type: 'string' },
    'success-threshold': { type: 'string' },
    'max-failures': { type: 'string' },
    soak: { type: 'string' },
    'device-timeout': { type: 'string' },
  },
  async run(ctx) {
    const { model, version } = parseModelRef(ctx.positionals[0]);
    const target = requireTarget(ctx);
    const threshold = optionalString(ctx, 'success-threshold');
    const body = {
      model,
      version,
      target,
      ...(optionalString(ctx, 'batches')
        ? {
            batches: optionalString(ctx, 'batches')
              ?.split(',')
              .map((b) => b.trim()),
          }
        : {}),
      ...(threshold ? { successThresholdPct: Number(threshold) } : {}),
      ...(optionalString(ctx, 'max-failures') ? { maxFailures: optionalString(ctx, 'max-failures') } : {}),
      ...(optionalInt(ctx, 'soak') !== undefined ? { soakSeconds: optionalInt(ctx, 'soak') } : {}),
      ...(optionalInt(ctx, 'device-timeout') !== undefined
        ? { deviceTimeoutSeconds: optionalInt(ctx, 'device-timeout') }
        : {}),
    };
    const rollout = await hubClient(ctx).request<{
      id: string;
      total: number;
      counts: Record<string, number>;
    }>('POST', '/rollouts', body);
    ctx.printJson(rollout);
    ctx.print(rollout.id);
    if (!ctx.json)
      process.stderr.write(
        `rollout of ${model}@${version} to ${rollout.total} device(s) started; follow it with: edgefleet rollouts ${rollout.id}\n`,
      );
    return 0;
  },
};
