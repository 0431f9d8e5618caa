// Suites that spawn `edgefleet hub` / `edgefleet agent` run the same bundle users run, so build it first.
// @ts-expect-error plain ESM build script without types
import { build } from '../../scripts/build.mjs';

export default async function setup(): Promise<void> {
  await build({ quiet: true });
}
