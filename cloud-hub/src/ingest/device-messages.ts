/**
 * Everything devices send, validated and stored. A bad payload is counted and logged, then
 * acknowledged (resending it would not make it valid); a storage failure is not acknowledged,
 * so the message comes again.
 */
import {
  commandReply,
  parseDeviceTopic,
  parseMessage,
  reportedState,
  statsMessage,
  statusMessage,
  type TelemetrySample,
  telemetryMessage,
  ValidationError,
} from '@edgefleet/protocol';
import type { DeviceMessageHandler } from '../broker/link.ts';
import type { HubContext } from '../context.ts';
import { onDeviceReported } from '../rollouts/engine.ts';
import type { ChunkStreamer } from './chunk-streamer.ts';
import type { CommandReplies } from './commands.ts';
import { groupCommit } from './group-commit.ts';

export function createDeviceMessageHandler(
  ctx: HubContext,
  replies: CommandReplies,
  chunks: ChunkStreamer,
): DeviceMessageHandler & { drain(): Promise<void> } {
  const { metrics, logger } = ctx;
  const telemetry = groupCommit<{ deviceId: string; sample: TelemetrySample }>(async (rows) => {
    const stored = await ctx.store.devices.insertTelemetry(rows);
    metrics.telemetryCommitRows.observe(rows.length);
    metrics.telemetryStored.inc(stored);
    metrics.telemetryDuplicates.inc(rows.length - stored);
  });
  const stats = groupCommit<Parameters<HubContext['store']['stats']['insert']>[0][number]>(async (rows) => {
    await ctx.store.stats.insert(rows);
  });

  /**
   * The brokers hand over several messages at once (a socket read's worth, or a window of
   * unacknowledged ones), and their handling overlaps. Telemetry and stats windows do not mind
   * (group commits, duplicates dropped by seq, the newest sample wins by time), but a device's
   * status and reported state must be applied in the order it sent them: an older "downloading"
   * stored after a newer "active" would leave the device stuck in its rollout. So those run one
   * after the other per device.
   */
  const inOrder = new Map<string, Promise<void>>();
  const handler = async (
    topic: string,
    payload: Buffer,
    authenticatedDevice: string | undefined,
  ): Promise<void> => {
    const parsed = parseDeviceTopic(topic);
    if (!parsed || (authenticatedDevice !== undefined && parsed.deviceId !== authenticatedDevice)) {
      metrics.mqttInvalid.inc({ reason: 'topic' });
      return;
    }
    if (parsed.kind === 'telemetry' || parsed.kind === 'stats') return handle(topic, parsed, payload);
    const { deviceId } = parsed;
    const previous = inOrder.get(deviceId) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(() => handle(topic, parsed, payload));
    const tail = current.catch(() => undefined);
    inOrder.set(deviceId, tail);
    void tail.then(() => {
      if (inOrder.get(deviceId) === tail) inOrder.delete(deviceId);
    });
    return current;
  };
  const handle = async (
    topic: string,
    parsed: NonNullable<ReturnType<typeof parseDeviceTopic>>,
    payload: Buffer,
  ): Promise<void> => {
    const { deviceId } = parsed;
    metrics.mqttMessages.inc({ kind: parsed.kind });
    try {
      switch (parsed.kind) {
        case 'telemetry': {
          const message = parseMessage(telemetryMessage, payload, 'telemetry');
          await Promise.all(message.samples.map((sample) => telemetry.add({ deviceId, sample })));
          ctx.live.emit({ type: 'telemetry', deviceId, seq: Math.max(...message.samples.map((s) => s.seq)) });
          return;
        }
        case 'status': {
          if (payload.length === 0) return; // a cleared retained message
          const message = parseMessage(statusMessage, payload, 'status');
          await ctx.store.devices.setStatus(
            deviceId,
            message.state,
            message.agentVersion,
            new Date().toISOString(),
          );
          await ctx.store.events.add({
            kind: `device.${message.state}`,
            subject: deviceId,
            actor: `device:${deviceId}`,
            message: `${message.state} (agent ${message.agentVersion})`,
          });
          ctx.live.emit({ type: 'device', deviceId });
          return;
        }
        case 'reported': {
          if (payload.length === 0) return;
          const message = parseMessage(reportedState, payload, 'reported');
          await ctx.store.devices.setReported(deviceId, message);
          await chunks.onTransfers(deviceId, message.transfers);
          await onDeviceReported(ctx, deviceId, message, { awaitStep: false });
          ctx.live.emit({ type: 'device', deviceId });
          return;
        }
        case 'stats': {
          const message = parseMessage(statsMessage, payload, 'stats');
          await Promise.all(message.windows.map((window) => stats.add({ deviceId, window })));
          return;
        }
        case 'cmd-reply': {
          replies.resolve(deviceId, parseMessage(commandReply, payload, 'command reply'));
          return;
        }
        default:
          metrics.mqttInvalid.inc({ reason: 'direction' });
      }
    } catch (error) {
      if (error instanceof ValidationError) {
        metrics.mqttInvalid.inc({ reason: parsed.kind });
        logger.warn({ deviceId, topic, error: error.message }, 'invalid device message dropped');
        return;
      }
      throw error;
    }
  };
  return Object.assign(handler, {
    async drain() {
      await Promise.all([telemetry.drain(), stats.drain()]);
    },
  });
}
