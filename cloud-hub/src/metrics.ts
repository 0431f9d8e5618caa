/** Prometheus metrics of one hub process, served at GET /metrics. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'edgefleet_hub_' });
  return {
    registry,
    mqttMessages: new Counter({
      name: 'edgefleet_mqtt_messages_total',
      help: 'Device messages handled, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    mqttInvalid: new Counter({
      name: 'edgefleet_mqtt_invalid_messages_total',
      help: 'Device messages refused (bad payload or ACL), by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    telemetryStored: new Counter({
      name: 'edgefleet_telemetry_samples_stored_total',
      help: 'Telemetry samples stored',
      registers: [registry],
    }),
    telemetryDuplicates: new Counter({
      name: 'edgefleet_telemetry_duplicates_total',
      help: 'Telemetry samples dropped as duplicates (seq seen before)',
      registers: [registry],
    }),
    telemetryCommitRows: new Histogram({
      name: 'edgefleet_telemetry_commit_rows',
      help: 'Telemetry samples per group commit (1 under load means messages reach the hub one at a time)',
      buckets: [1, 2, 5, 10, 50, 100, 500, 2000],
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: 'edgefleet_http_requests_total',
      help: 'HTTP requests, by method and status',
      labelNames: ['method', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'edgefleet_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    devicesOnline: new Gauge({
      name: 'edgefleet_devices_online',
      help: 'Devices whose last status is online',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
