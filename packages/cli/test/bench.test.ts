/**
 * `edgefleet bench`: one cheap benchmark (artifact download) in quick mode, written to disk as
 * users get it; checks the shape and that the figures are real numbers, not how fast they are.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { downloadBench } from '../src/bench/download.ts';
import { FLASHED_NODE_FLAGS } from '../src/bench/footprint.ts';
import { benchmarks } from '../src/bench/index.ts';
import { writeResults } from '../src/bench/report.ts';
import type { BenchResult } from '../src/bench/types.ts';
import type { CommandContext } from '../src/command.ts';
import { BENCH_NAMES, benchCommand } from '../src/commands/bench.ts';

const dir = await mkdtemp(join(tmpdir(), 'ef-bench-test-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('edgefleet bench', () => {
  it('runs the download benchmark in quick mode and writes its JSON and the summary table', async () => {
    const progress: string[] = [];
    const result = await downloadBench.run({
      quick: true,
      progress: (t) => progress.push(t),
      cliPath: 'unused',
    });
    await writeResults(dir, [result]);
    const written = JSON.parse(await readFile(join(dir, 'download.json'), 'utf8')) as BenchResult & {
      at: string;
    };
    expect(written.name).toBe('download');
    expect(Number.isNaN(Date.parse(written.at))).toBe(false);
    expect(written.rows.length).toBeGreaterThan(0);
    for (const r of written.rows) {
      expect(Object.keys(r).sort()).toEqual(['baseline', 'met', 'name', 'ratio', 'target', 'unit', 'value']);
      for (const n of [r.value, r.baseline, r.ratio]) {
        expect(Number.isFinite(n)).toBe(true);
        expect(n).toBeGreaterThan(0);
      }
      expect(r.ratio).toBeCloseTo((r.value as number) / (r.baseline as number), 9);
      expect(typeof r.met).toBe('boolean');
    }
    expect(progress.length).toBeGreaterThan(0);
    const summary = await readFile(join(dir, 'summary.md'), 'utf8');
    expect(summary).toContain('| download | hub artifact download |');
  }, 180_000);

  it('lists the same benchmark names, in the same order, as the modules it loads lazily', () => {
    expect(BENCH_NAMES).toEqual(benchmarks.map((b) => b.name));
  });

  it('measures "as flashed" with the node flags the flash launcher passes by default', async () => {
    const launcher = await readFile(
      new URL('../../../scripts/flash/templates/launch.sh', import.meta.url),
      'utf8',
    );
    expect(launcher).toContain(`\${EDGEFLEET_NODE_OPTIONS-${FLASHED_NODE_FLAGS.join(' ')}}`);
  });

  it('refuses an unknown benchmark name with a usage error naming the known ones', async () => {
    const ctx = {
      values: { only: 'drift,nope' },
      positionals: [],
      json: false,
      verbose: false,
      print: () => undefined,
      printJson: () => undefined,
      progress: () => undefined,
    } satisfies CommandContext;
    await expect(benchCommand.run(ctx)).rejects.toThrow(/unknown benchmark "nope" \(known: .*drift/);
  });
});
