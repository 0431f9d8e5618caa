/** Per-device sequence numbers that survive restarts (the hub drops duplicates by them). */
import { join } from 'node:path';
import { readJson, writeFileAtomic } from '../files.ts';

export class SequenceCounter {
  private constructor(
    private readonly path: string,
    private values: Record<string, number>,
  ) {}

  static async open(dataDir: string): Promise<SequenceCounter> {
    const path = join(dataDir, 'sequence.json');
    return new SequenceCounter(
      path,
      (await readJson<Record<string, number>>(path).catch(() => undefined)) ?? {},
    );
  }

  /** The next number of `stream`, persisted before it is handed out. */
  async next(stream: string): Promise<number> {
    const value = (this.values[stream] ?? 0) + 1;
    this.values = { ...this.values, [stream]: value };
    await writeFileAtomic(this.path, JSON.stringify(this.values));
    return value;
  }
}
