/**
 * Per-device credentials and topic ACLs on Mosquitto, through its dynamic-security plugin: the hub
 * (a dynsec admin) creates one client and one role per device at enrollment, and deletes them on
 * revocation, which also disconnects the device at once.
 */
import { randomBytes } from 'node:crypto';
import { deviceAclPatterns } from '@edgefleet/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';

const CONTROL = '$CONTROL/dynamic-security/v1';

interface Response {
  command: string;
  error?: string;
  correlationData?: string;
}

export interface DynsecControl {
  provisionDevice(deviceId: string, secret: string): Promise<void>;
  removeDevice(deviceId: string): Promise<void>;
}

export const roleName = (deviceId: string) => `edgefleet-device-${deviceId}`;

/** The role's ACLs: publish only to the device's uplink topics, subscribe/receive only its downlink. */
export function deviceRoleAcls(deviceId: string) {
  const { publish, subscribe } = deviceAclPatterns(deviceId);
  return [
    ...publish.map((topic) => ({ acltype: 'publishClientSend', topic, allow: true, priority: 0 })),
    ...subscribe.map((topic) => ({ acltype: 'subscribePattern', topic, allow: true, priority: 0 })),
    ...subscribe.map((topic) => ({ acltype: 'publishClientReceive', topic, allow: true, priority: 0 })),
  ];
}

/** The hub's own role: all of edgefleet's topics (the dynsec admin role covers only $CONTROL). */
export const HUB_ROLE = 'edgefleet-hub';
const hubAcls = ['publishClientSend', 'publishClientReceive', 'subscribePattern', 'unsubscribePattern'].map(
  (acltype) => ({
    acltype,
    topic: 'edgefleet/v1/#',
    allow: true,
    priority: 0,
  }),
);

type Run = (commands: Record<string, unknown>[], tolerate?: string[]) => Promise<Response[]>;

/** Send dynsec commands on `client` and wait for their responses (matched by correlation id). */
async function commandRunner(client: MqttClient, logger: Logger): Promise<Run> {
  const waiting = new Map<string, (r: Response) => void>();
  client.on('message', (topic, payload) => {
    if (topic !== `${CONTROL}/response`) return;
    try {
      for (const r of (JSON.parse(payload.toString()) as { responses: Response[] }).responses) {
        if (r.correlationData) waiting.get(r.correlationData)?.(r);
      }
    } catch {
      logger.warn('unreadable dynamic-security response');
    }
  });
  await client.subscribeAsync(`${CONTROL}/response`, { qos: 1 });
  return async (commands, tolerate = []) => {
    const ids = commands.map(() => randomBytes(6).toString('hex'));
    const replies = Promise.all(
      ids.map(
        (id) =>
          new Promise<Response>((resolve, reject) => {
            const timer = setTimeout(
              () =>
                reject(new Error('Mosquitto dynamic security did not answer (is the hub a dynsec admin?)')),
              10_000,
            );
            waiting.set(id, (r) => {
              clearTimeout(timer);
              waiting.delete(id);
              resolve(r);
            });
          }),
      ),
    );
    replies.catch(() => undefined); // handled below; never an unhandled rejection while publishing
    await client.publishAsync(
      CONTROL,
      JSON.stringify({ commands: commands.map((c, i) => ({ ...c, correlationData: ids[i] })) }),
      { qos: 1 },
    );
    const responses = await replies;
    for (const r of responses) {
      if (r.error && !tolerate.some((t) => r.error?.includes(t)))
        throw new Error(`dynamic security ${r.command}: ${r.error}`);
    }
    return responses;
  };
}

/**
 * Give the hub's own broker user the edgefleet role, on a short-lived connection: Mosquitto
 * disconnects a client whose roles change, so this must happen before the hub's real session.
 */
export async function bootstrapHubRole(url: string, logger: Logger): Promise<void> {
  const username = decodeURIComponent(new URL(url).username);
  const client = await mqtt.connectAsync(url, {
    clientId: `edgefleet-hub-setup-${randomBytes(4).toString('hex')}`,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  try {
    const run = await commandRunner(client, logger);
    const [info] = await run([{ command: 'getClient', username }]);
    const roles = (
      (info as Response & { data?: { client?: { roles?: { rolename: string }[] } } }).data?.client?.roles ??
      []
    ).map((r) => r.rolename);
    if (roles.includes(HUB_ROLE)) return;
    await run([{ command: 'createRole', rolename: HUB_ROLE, acls: hubAcls }], ['already exists']);
    // The broker applies this and disconnects the client at once (its roles changed): wait for that.
    const closed = new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      setTimeout(resolve, 10_000).unref();
    });
    client.publish(
      CONTROL,
      JSON.stringify({
        commands: [{ command: 'addClientRole', username, rolename: HUB_ROLE, priority: 10 }],
      }),
      { qos: 0 },
    );
    await closed;
    logger.info({ username }, 'hub user granted the edgefleet role on the broker');
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

export async function createDynsecControl(client: MqttClient, logger: Logger): Promise<DynsecControl> {
  const run = await commandRunner(client, logger);
  return {
    async provisionDevice(deviceId, secret) {
      await run(
        [
          { command: 'createRole', rolename: roleName(deviceId), acls: deviceRoleAcls(deviceId) },
          {
            command: 'createClient',
            username: deviceId,
            password: secret,
            clientid: deviceId,
            roles: [{ rolename: roleName(deviceId) }],
          },
        ],
        ['already exists'],
      );
      logger.info({ deviceId }, 'device provisioned on the broker (dynamic security)');
    },
    async removeDevice(deviceId) {
      await run(
        [
          { command: 'deleteClient', username: deviceId },
          { command: 'deleteRole', rolename: roleName(deviceId) },
        ],
        ['not found'],
      );
      logger.info({ deviceId }, 'device removed from the broker (dynamic security)');
    },
  };
}
