/**
 * The MQTT topic map. Every device topic lives under `edgefleet/v1/devices/{id}/`; a device may
 * publish and subscribe only there (see `deviceMayPublish` / `deviceMaySubscribe`).
 */
export const TOPIC_ROOT = 'edgefleet/v1';

/** Device topic kinds that carry one JSON payload each (chunks and cmd carry a suffix). */
export type DeviceTopicKind = 'status' | 'desired' | 'reported' | 'telemetry' | 'stats';

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** True when `id` is usable as a device id inside a topic (no wildcards, no separators). */
export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

export const topics = {
  status: (id: string) => `${TOPIC_ROOT}/devices/${id}/status`,
  desired: (id: string) => `${TOPIC_ROOT}/devices/${id}/desired`,
  reported: (id: string) => `${TOPIC_ROOT}/devices/${id}/reported`,
  telemetry: (id: string) => `${TOPIC_ROOT}/devices/${id}/telemetry`,
  stats: (id: string) => `${TOPIC_ROOT}/devices/${id}/stats`,
  cmd: (id: string, name: string) => `${TOPIC_ROOT}/devices/${id}/cmd/${name}`,
  cmdReply: (id: string, name: string) => `${TOPIC_ROOT}/devices/${id}/cmd/${name}/reply`,
  chunks: (id: string, sha256: string) => `${TOPIC_ROOT}/devices/${id}/chunks/${sha256}`,
};

/** Subscription filters the hub uses for device→hub traffic (without any `$share/` prefix). */
export const hubSubscriptions = [
  `${TOPIC_ROOT}/devices/+/status`,
  `${TOPIC_ROOT}/devices/+/reported`,
  `${TOPIC_ROOT}/devices/+/telemetry`,
  `${TOPIC_ROOT}/devices/+/stats`,
  `${TOPIC_ROOT}/devices/+/cmd/+/reply`,
] as const;

/** Prefix a filter for an MQTT 5 shared subscription so each message reaches one hub replica. */
export function sharedSubscription(group: string, filter: string): string {
  return `$share/${group}/${filter}`;
}

export type ParsedDeviceTopic =
  | { deviceId: string; kind: DeviceTopicKind }
  | { deviceId: string; kind: 'cmd'; command: string }
  | { deviceId: string; kind: 'cmd-reply'; command: string }
  | { deviceId: string; kind: 'chunks'; sha256: string };

/** Parse a concrete device topic; returns undefined for anything outside the map. */
export function parseDeviceTopic(topic: string): ParsedDeviceTopic | undefined {
  const parts = topic.split('/');
  if (parts[0] !== 'edgefleet' || parts[1] !== 'v1' || parts[2] !== 'devices') return undefined;
  const deviceId = parts[3];
  const kind = parts[4];
  if (deviceId === undefined || kind === undefined || !isValidDeviceId(deviceId)) return undefined;
  if (parts.length === 5) {
    if (
      kind === 'status' ||
      kind === 'desired' ||
      kind === 'reported' ||
      kind === 'telemetry' ||
      kind === 'stats'
    ) {
      return { deviceId, kind };
    }
    return undefined;
  }
  const name = parts[5];
  if (name === undefined || name === '' || name.includes('+') || name.includes('#')) return undefined;
  if (kind === 'cmd' && parts.length === 6) return { deviceId, kind: 'cmd', command: name };
  if (kind === 'cmd' && parts.length === 7 && parts[6] === 'reply')
    return { deviceId, kind: 'cmd-reply', command: name };
  if (kind === 'chunks' && parts.length === 6 && /^[0-9a-f]{64}$/.test(name))
    return { deviceId, kind: 'chunks', sha256: name };
  return undefined;
}

/** Topic ACL for a device: what it may publish (its own uplink topics only). */
export function deviceMayPublish(deviceId: string, topic: string): boolean {
  const parsed = parseDeviceTopic(topic);
  if (!parsed || parsed.deviceId !== deviceId) return false;
  return (
    parsed.kind === 'status' ||
    parsed.kind === 'reported' ||
    parsed.kind === 'telemetry' ||
    parsed.kind === 'stats' ||
    parsed.kind === 'cmd-reply'
  );
}

/** Topic ACL for a device: which filters it may subscribe to (its own downlink topics only). */
export function deviceMaySubscribe(deviceId: string, filter: string): boolean {
  const base = `${TOPIC_ROOT}/devices/${deviceId}/`;
  if (!isValidDeviceId(deviceId) || !filter.startsWith(base)) return false;
  const rest = filter.slice(base.length);
  return (
    rest === 'desired' ||
    rest === 'cmd/+' ||
    rest === 'chunks/+' ||
    /^cmd\/[A-Za-z0-9_-]+$/.test(rest) ||
    /^chunks\/[0-9a-f]{64}$/.test(rest)
  );
}

/** The same ACL as data, for brokers configured from outside (Mosquitto ACL files, dynamic security). */
export function deviceAclPatterns(deviceId: string): { publish: string[]; subscribe: string[] } {
  const base = `${TOPIC_ROOT}/devices/${deviceId}`;
  return {
    publish: [
      `${base}/status`,
      `${base}/reported`,
      `${base}/telemetry`,
      `${base}/stats`,
      `${base}/cmd/+/reply`,
    ],
    subscribe: [`${base}/desired`, `${base}/cmd/+`, `${base}/chunks/+`],
  };
}
