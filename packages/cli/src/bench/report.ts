/** Bench output: one JSON file per benchmark and a markdown table of every row. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { BenchResult, BenchRow } from './types.ts';

/** Three significant digits, no exponent: readable in a table. */
export function formatNumber(n: number | null): string {
  if (n === null) return '-';
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (Number.isInteger(n) || abs >= 1000) return Math.round(n).toLocaleString('en-US');
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

export function machine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}`;
}

const met = (r: BenchRow) => (r.met === null ? '' : r.met ? 'yes' : '**no**');

export function markdownTable(results: readonly BenchResult[], at: string): string {
  const lines = [
    `# edgefleet bench — ${at}`,
    '',
    `Machine: ${machine()}.`,
    '',
    '| benchmark | measure | value | unit | baseline | ratio | target | met |',
    '|---|---|--:|---|--:|--:|---|---|',
  ];
  for (const result of results) {
    for (const r of result.rows)
      lines.push(
        `| ${result.name} | ${r.name} | ${formatNumber(r.value)} | ${r.unit} | ${formatNumber(r.baseline)} | ${r.ratio === null ? '-' : `${r.ratio.toFixed(2)}×`} | ${r.target ?? ''} | ${met(r)} |`,
      );
    for (const s of result.skipped)
      lines.push(`| ${result.name} | ${s.name} | skipped | | | | | ${s.reason} |`);
  }
  lines.push('');
  for (const result of results) {
    if (result.notes.length === 0) continue;
    lines.push(`- **${result.name}**: ${result.notes.join(' ')}`);
  }
  lines.push('');
  return lines.join('\n');
}

/** Earlier results of `names` from `dir` (those that exist), for a summary after `--only`. */
export async function previousResults(dir: string, names: readonly string[]): Promise<BenchResult[]> {
  const found: BenchResult[] = [];
  for (const name of names) {
    try {
      found.push(JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as BenchResult);
    } catch {
      // never run into this directory: nothing to carry over
    }
  }
  return found;
}

/**
 * Write `<name>.json` per benchmark run now and `summary.md` of those plus `earlier` (figures of
 * benchmarks not run this time, kept as they were); resolves with the markdown.
 */
export async function writeResults(
  dir: string,
  results: readonly BenchResult[],
  earlier: readonly BenchResult[] = [],
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const at = new Date().toISOString();
  for (const result of results) {
    await writeFile(
      join(dir, `${result.name}.json`),
      `${JSON.stringify({ ...result, at, machine: machine() }, null, 2)}\n`,
    );
  }
  const markdown = markdownTable([...results, ...earlier], at);
  await writeFile(join(dir, 'summary.md'), markdown);
  return markdown;
}
