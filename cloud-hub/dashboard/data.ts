/** Data hooks: fetch from the API and refetch (throttled) when a matching live event arrives. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, type LiveEvent } from './api.ts';

type Listener = (event: LiveEvent) => void;
const listeners = new Set<Listener>();

/** Fed by the live stream in main.tsx. */
export function publishLive(event: LiveEvent): void {
  for (const listener of listeners) listener(event);
}

export function useApi<T>(
  path: string | null,
  refreshOn?: (event: LiveEvent) => boolean,
): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const pending = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const load = useCallback(() => {
    if (!path) return;
    api<T>('GET', path).then(
      (value) => {
        setData(value);
        setError(undefined);
      },
      (e: unknown) => setError(e),
    );
  }, [path]);
  useEffect(() => {
    setData(undefined);
    load();
  }, [load]);
  // Pages pass a fresh predicate each render; keep the latest in a ref so the subscription (and a
  // refetch already scheduled) survives re-renders. Clearing the timer on every render used to leave
  // `pending` set forever, and the page stopped following the live stream.
  const refreshOnRef = useRef(refreshOn);
  refreshOnRef.current = refreshOn;
  const hasRefresh = refreshOn !== undefined;
  useEffect(() => {
    if (!hasRefresh) return;
    const listener: Listener = (event) => {
      if (!refreshOnRef.current?.(event) || pending.current) return;
      // At most one refetch per second however busy the fleet is.
      pending.current = setTimeout(() => {
        pending.current = undefined;
        load();
      }, 1000);
    };
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      clearTimeout(pending.current);
      pending.current = undefined;
    };
  }, [load, hasRefresh]);
  return { data, error, reload: load };
}
