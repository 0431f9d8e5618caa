/**
 * Group commit: items added while a flush is running are flushed together in the next one. The
 * first item after a quiet spell is written at once (no timer), and under load batches grow by
 * themselves, so ingest stays both prompt and cheap per message.
 */
export interface GroupCommit<T> {
  /** Resolves once the item is durably written (or rejects with the flush error). */
  add(item: T): Promise<void>;
  /** Resolves when nothing is pending. */
  drain(): Promise<void>;
}

export function groupCommit<T>(flush: (items: T[]) => Promise<void>, maxBatch = 2000): GroupCommit<T> {
  let pending: { item: T; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let running: Promise<void> | undefined;

  async function run(): Promise<void> {
    while (pending.length > 0) {
      const batch = pending.slice(0, maxBatch);
      pending = pending.slice(batch.length);
      try {
        await flush(batch.map((b) => b.item));
        for (const b of batch) b.resolve();
      } catch (error) {
        for (const b of batch) b.reject(error);
      }
    }
    running = undefined;
  }

  return {
    add(item) {
      return new Promise<void>((resolve, reject) => {
        pending.push({ item, resolve, reject });
        running ??= run();
      });
    },
    async drain() {
      while (running) await running;
    },
  };
}
