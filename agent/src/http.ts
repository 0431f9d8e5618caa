/**
 * HTTP to the hub, trusting an extra CA when the hub uses a private certificate (`--ca`). undici
 * is the library behind Node's own fetch; its Agent is how a custom CA is given to fetch.
 */
import { Agent, fetch as undiciFetch } from 'undici';

export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

export function httpFetch(caPem?: string): Fetch {
  if (!caPem) return (url, init) => fetch(url, init);
  const dispatcher = new Agent({ connect: { ca: caPem } });
  return (url, init) =>
    undiciFetch(url, { ...(init as object), dispatcher } as never) as unknown as Promise<Response>;
}
