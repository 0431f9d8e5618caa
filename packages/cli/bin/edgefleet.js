#!/usr/bin/env node
// The `edgefleet` command. `npm install` builds dist/ (root "prepare" script); this file only loads it.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/edgefleet.mjs', import.meta.url);
if (!existsSync(bundle)) {
  console.error('edgefleet is not built yet: run `npm run build` in the project root.');
  process.exit(1);
}
await import(bundle.href);
