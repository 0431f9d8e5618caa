/** Every benchmark `edgefleet bench` runs, in the order it runs them. */
import { downloadBench } from './download.ts';
import { driftBench } from './drift.ts';
import { fanoutBench } from './fanout.ts';
import { footprintBench } from './footprint.ts';
import { inferenceBench } from './inference.ts';
import { int8Bench } from './int8.ts';
import { telemetryBench } from './telemetry.ts';
import type { BenchModule } from './types.ts';

export const benchmarks: BenchModule[] = [
  inferenceBench,
  int8Bench,
  footprintBench,
  telemetryBench,
  fanoutBench,
  driftBench,
  downloadBench,
];
