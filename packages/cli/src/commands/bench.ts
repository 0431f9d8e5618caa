/**
 * `edgefleet bench`: run the benchmarks, each figure beside a baseline measured in the same run on
 * the same machine; write bench/results/<name>.json and summary.md and print the table.
 * Not part of `npm test`: a full run takes minutes (--quick: about one).
 */
import { resolve } from 'node:path';
import { formatNumber, previousResults, writeResults } from '../bench/report.ts';
import type { BenchResult, BenchRow } from '../bench/types.ts';
import { type Command, optionalString, UsageError } from '../command.ts';
import { formatTable } from '../table.ts';

/**
 * The benchmarks' names in the order they run (`bench/index.ts` has the modules; a test checks the
 * two agree). The modules load only when `bench` runs: they import onnxruntime-node and mqtt, and
 * every command shares this entry chunk (an idle `edgefleet agent` paid ~20 MB RSS for them).
 */
export const BENCH_NAMES = ['inference', 'int8', 'footprint', 'telemetry', 'fanout', 'drift', 'download'];

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Run the benchmarks against same-run baselines; write bench/results/*.json and summary.md',
  usage: `bench [--only ${BENCH_NAMES.join(',')}] [--out bench/results] [--quick] [--json]`,
  options: { only: { type: 'string' }, out: { type: 'string' }, quick: { type: 'boolean' } },
  async run(ctx) {
    const only = optionalString(ctx, 'only')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = only?.filter((n) => !BENCH_NAMES.includes(n)) ?? [];
    if (unknown.length > 0)
      throw new UsageError(
        `unknown benchmark ${unknown.map((n) => `"${n}"`).join(', ')} (known: ${BENCH_NAMES.join(', ')})`,
      );
    const { benchmarks } = await import('../bench/index.ts');
    const selected = only ? benchmarks.filter((b) => only.includes(b.name)) : benchmarks;
    const out = resolve(optionalString(ctx, 'out') ?? 'bench/results');
    const cliPath = process.env.EDGEFLEET_CLI ?? process.argv[1] ?? 'packages/cli/bin/edgefleet.js';
    const results: BenchResult[] = [];
    let failed = 0;
    for (const bench of selected) {
      const started = Date.now();
      // Progress always goes to stderr, even with --json: a long run should show it is alive.
      const progress = (text: string) => process.stderr.write(`[bench ${bench.name}] ${text}\n`);
      progress(`starting: ${bench.title}`);
      try {
        results.push(await bench.run({ quick: ctx.values.quick === true, progress, cliPath }));
        progress(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } catch (error) {
        // One broken benchmark must not lose the others' figures: record it and go on.
        failed++;
        const message = error instanceof Error ? error.message : String(error);
        progress(`failed: ${message}`);
        if (ctx.verbose && error instanceof Error) process.stderr.write(`${error.stack}\n`);
        results.push({
          name: bench.name,
          title: bench.title,
          rows: [],
          skipped: [{ name: 'all', reason: `failed: ${message}` }],
          notes: [],
        });
      }
    }
    // With --only, the summary keeps the other benchmarks' last figures from their JSON files.
    const earlier = await previousResults(
      out,
      benchmarks.filter((b) => !selected.includes(b)).map((b) => b.name),
    );
    const markdown = await writeResults(out, results, earlier);
    ctx.printJson({ out, results });
    const flat = results.flatMap((r) => r.rows.map((row) => ({ bench: r.name, ...row })));
    const skipped = results.flatMap((r) =>
      r.skipped.map((s) => `  ${r.name} / ${s.name}: skipped (${s.reason})`),
    );
    ctx.print(
      formatTable<BenchRow & { bench: string }>(flat, [
        { header: 'BENCH', value: (r) => r.bench },
        { header: 'MEASURE', value: (r) => r.name },
        { header: 'VALUE', value: (r) => `${formatNumber(r.value)} ${r.unit}`, align: 'right' },
        { header: 'BASELINE', value: (r) => formatNumber(r.baseline), align: 'right' },
        {
          header: 'RATIO',
          value: (r) => (r.ratio === null ? '-' : `${r.ratio.toFixed(2)}×`),
          align: 'right',
        },
        { header: 'TARGET', value: (r) => r.target ?? '' },
        { header: 'MET', value: (r) => (r.met === null ? '' : r.met ? 'yes' : 'NO') },
      ]),
    );
    for (const line of skipped) ctx.print(line);
    ctx.print(`\nwrote ${out}/summary.md (${markdown.split('\n').length} lines) and one JSON per benchmark`);
    return failed > 0 ? 1 : 0;
  },
};
