/** Remote commands: publish `cmd/{name}` with a correlation id, await the device's reply. */
import { randomBytes } from 'node:crypto';
import { type CommandReply, encodeMessage, topics } from '@edgefleet/protocol';
import type { BrokerLink } from '../broker/link.ts';
import { HubError } from '../errors.ts';

export interface CommandReplies {
  resolve(deviceId: string, reply: CommandReply): void;
  send(
    broker: BrokerLink,
    deviceId: string,
    name: string,
    args: Record<string, unknown>,
    timeoutMs?: number,
  ): Promise<CommandReply>;
}

export function createCommandReplies(): CommandReplies {
  const waiting = new Map<string, { deviceId: string; done: (r: CommandReply) => void }>();
  return {
    resolve(deviceId, reply) {
      const w = waiting.get(reply.id);
      if (w && w.deviceId === deviceId) {
        waiting.delete(reply.id);
        w.done(reply);
      }
    },
    async send(broker, deviceId, name, args, timeoutMs = 15_000) {
      const id = randomBytes(8).toString('hex');
      const reply = new Promise<CommandReply>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(
            new HubError('TIMEOUT', `device ${deviceId} did not answer "${name}" within ${timeoutMs} ms`),
          );
        }, timeoutMs);
        waiting.set(id, {
          deviceId,
          done: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
      });
      await broker.publish(topics.cmd(deviceId, name), encodeMessage({ id, args }), { retain: false });
      return reply;
    },
  };
}
