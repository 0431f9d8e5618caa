/**
 * Notifications of changes, for the dashboard's live updates. A failing listener is isolated: it
 * is logged and never breaks the emitter or other listeners. With several hub replicas, events
 * are relayed through the broker so a browser sees changes whichever replica serves it.
 */
import type { Logger } from 'pino';

export type LiveEvent =
  | { type: 'device'; deviceId: string }
  | { type: 'telemetry'; deviceId: string; seq: number }
  | { type: 'rollout'; rolloutId: string }
  | { type: 'model'; model: string; version: string }
  | { type: 'drift'; model: string; version: string };

export type LiveListener = (event: LiveEvent) => void;

export interface LiveBus {
  /** A change made here: tell local listeners and, through the relay, the other replicas. */
  emit(event: LiveEvent): void;
  /** A change another replica made: tell local listeners only. */
  receive(event: LiveEvent): void;
  subscribe(listener: LiveListener): () => void;
  setRelay(relay: ((event: LiveEvent) => void) | undefined): void;
}

export function createLiveBus(logger: Logger): LiveBus {
  const listeners = new Set<LiveListener>();
  let relay: ((event: LiveEvent) => void) | undefined;
  const deliver = (event: LiveEvent) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        logger.warn({ err: error, event: event.type }, 'live listener failed');
      }
    }
  };
  return {
    emit(event) {
      deliver(event);
      relay?.(event);
    },
    receive: deliver,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    setRelay(r) {
      relay = r;
    },
  };
}
