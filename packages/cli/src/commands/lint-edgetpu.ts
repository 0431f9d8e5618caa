/**
 * `edgefleet lint-edgetpu MODEL.tflite [--runtime 14]`: what the Edge TPU compiler would map, op by
 * op, with the first op that falls back to the CPU and why; for a compiled `_edgetpu.tflite`, also
 * what its Edge TPU package holds (min runtime version, chip, parameter bytes). Exit 1 when not
 * every op maps.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { type Command, optionalInt, UsageError } from '../command.ts';
import { formatBytes, formatTable } from '../table.ts';

export const lintEdgetpuCommand: Command = {
  name: 'lint-edgetpu',
  summary: 'Check a .tflite against the Edge TPU rules; inspect a compiled _edgetpu.tflite',
  usage: 'lint-edgetpu MODEL.tflite [--runtime 10..14]',
  options: { runtime: { type: 'string' } },
  async run(ctx) {
    const [file] = ctx.positionals;
    if (!file) throw new UsageError('lint-edgetpu needs the .tflite file');
    const runtime = optionalInt(ctx, 'runtime');
    if (runtime !== undefined && (runtime < 10 || runtime > 14))
      throw new UsageError(`--runtime must be an Edge TPU runtime version from 10 to 14, got ${runtime}`);
    const { describeLint, inspectEdgeTpu, lintEdgeTpu } = await import('@edgefleet/converters');
    const bytes = new Uint8Array(await readFile(file));
    const lint = lintEdgeTpu(bytes, runtime !== undefined ? { runtime } : {});
    const inspection = lint.compiled ? inspectEdgeTpu(bytes) : undefined;
    ctx.printJson({ file, lint, ...(inspection ? { inspection } : {}) });
    ctx.print(`${basename(file)}: ${describeLint(lint)} (Edge TPU runtime ${lint.runtime})`);
    for (const issue of lint.modelIssues) ctx.print(`WARNING: ${issue}`);
    ctx.print('');
    ctx.print(
      formatTable(lint.ops, [
        { header: '#', value: (o) => String(o.index), align: 'right' },
        { header: 'OP', value: (o) => o.op },
        { header: 'WHERE', value: (o) => (o.onEdgeTpu ? 'Edge TPU' : 'CPU') },
        {
          header: 'RUNTIME',
          value: (o) => (o.runtime !== undefined ? String(o.runtime) : '-'),
          align: 'right',
        },
        {
          header: 'WHY',
          value: (o) => (o.issues.length ? o.issues.join('; ') : o.onEdgeTpu ? '' : 'after the first CPU op'),
        },
      ]),
    );
    if (inspection) {
      ctx.print('');
      ctx.print(
        `compiled: ${inspection.edgeTpuOps.length} Edge TPU op(s), ${inspection.cpuOps.length} CPU op(s)` +
          `${inspection.cpuOps.length ? ` (${inspection.cpuOps.join(', ')})` : ''}; ` +
          `min runtime ${inspection.minRuntimeVersion}; chip ${inspection.chips.join(', ') || '-'}; ` +
          `compiler ${inspection.compilerVersions.join(', ') || '-'}; parameters ${formatBytes(inspection.parameterBytes)}` +
          (inspection.streamsParameters ? ' (over the 8 MiB on-chip cache: streamed)' : ''),
      );
    }
    return lint.firstCpuOp ? 1 : 0;
  },
};
