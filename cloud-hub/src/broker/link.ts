/**
 * The hub's side of MQTT, behind one interface with two drivers: the embedded aedes broker
 * (`embedded.ts`) and an external broker reached as a client (`external.ts`). In both, a device
 * message is acknowledged (PUBACK) only after `onDeviceMessage` resolves, i.e. after it is stored.
 */
export type DeviceMessageHandler = (
  topic: string,
  payload: Buffer,
  deviceId: string | undefined,
) => Promise<void>;

export interface BrokerLink {
  /**
   * The broker URL agents should use, told to them at enrollment. The embedded broker answers
   * with the host name the agent used to reach the API, which is the one it can resolve.
   */
  agentUrl(requestHost?: string): string;
  readonly description: string;
  start(onDeviceMessage: DeviceMessageHandler): Promise<void>;
  publish(topic: string, payload: string | Buffer, options: { retain: boolean }): Promise<void>;
  /** Messages between hub replicas (not device traffic), e.g. live-update relays; every replica gets each. */
  onHubMessage(topic: string, handler: (payload: Buffer) => void): Promise<void>;
  /** Give a newly enrolled device its broker credentials and ACL (brokers that keep their own). */
  provisionDevice(deviceId: string, secret: string): Promise<void>;
  /** Close a device's live connection at once and remove its broker credentials (after revocation). */
  disconnectDevice(deviceId: string): Promise<void>;
  /**
   * Take over a dead replica's persistent MQTT session (its client id), handle what the broker
   * queued for it, and end the session so the shared-subscription group stops routing to it.
   * Only brokers shared between replicas have it. Returns how many messages were handled.
   */
  adoptSession?(clientId: string): Promise<number>;
  isConnected(): boolean;
  close(): Promise<void>;
}

/** Who an MQTT connection belongs to, decided at CONNECT. */
export type BrokerPrincipal = { kind: 'hub' } | { kind: 'device'; deviceId: string };

export type BrokerAuthenticator = (
  clientId: string,
  username: string | undefined,
  password: string | undefined,
) => Promise<BrokerPrincipal | undefined>;
