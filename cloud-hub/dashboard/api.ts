/** The dashboard's talk to the hub: JSON calls with the signed-in token, and the live event stream. */
const TOKEN_KEY = 'edgefleet.token';

export const auth = {
  get token(): string | null {
    return localStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    localStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    localStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${auth.token ?? ''}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const json = (await response.json().catch(() => undefined)) as
    | { error?: { code: string; message: string } }
    | undefined;
  if (!response.ok)
    throw new ApiError(
      response.status,
      json?.error?.code ?? `HTTP_${response.status}`,
      json?.error?.message ?? response.statusText,
    );
  return json as T;
}

export type LiveEvent = {
  type: 'device' | 'telemetry' | 'rollout' | 'model' | 'drift';
  deviceId?: string;
  rolloutId?: string;
  model?: string;
};

/**
 * Follow the hub's server-sent events with fetch (EventSource cannot send an Authorization
 * header). Reconnects after a drop; returns a function that stops it.
 */
export function followLive(
  onEvent: (event: LiveEvent) => void,
  onStatus: (connected: boolean) => void,
): () => void {
  let stopped = false;
  let controller: AbortController | undefined;
  const run = async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch('/api/v1/live', {
          headers: { authorization: `Bearer ${auth.token ?? ''}` },
          signal: controller.signal,
        });
        if (!response.ok || !response.body) throw new Error(`live stream: ${response.status}`);
        onStatus(true);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split('\n')
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trim())
              .join('\n');
            if (data) {
              try {
                const event = JSON.parse(data) as LiveEvent;
                if (event.type) onEvent(event);
              } catch {
                // not an event (hello, keep-alive)
              }
            }
            end = buffer.indexOf('\n\n');
          }
        }
      } catch {
        // dropped: retry below
      }
      onStatus(false);
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
