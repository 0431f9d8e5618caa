/**
 * The prebuilt SDK served by the hub at /sdk/edgefleet.js:
 *
 *   import * as edgefleet from 'https://hub.example.com/sdk/edgefleet.js';
 *   const model = await edgefleet.load({ hub: 'https://hub.example.com', model: 'classifier', token });
 *   const { probabilities } = await model.predict(pixels);
 *
 * Same API as @edgefleet/web, except that engines default to the files served next to this one.
 */
import { type AssetOptions, urlRuntimes } from './assets.ts';
import { type LoadOptions, load as loadCore } from './load.ts';
import {
  type LoadFromManifestOptions,
  loadFromManifest as loadFromManifestCore,
  type Runtimes,
} from './model.ts';
import type { EdgefleetModel } from './session.ts';

export * from './index.ts';

export type BrowserLoadOptions = Omit<LoadOptions, 'runtimes'> & {
  runtimes?: Runtimes;
  assets?: AssetOptions;
};
export type BrowserLoadFromManifestOptions = Omit<LoadFromManifestOptions, 'runtimes'> & {
  runtimes?: Runtimes;
  assets?: AssetOptions;
};

/** Load a model version from the hub; engines come from the hub's /sdk/ folder unless given. */
export function load(options: BrowserLoadOptions): Promise<EdgefleetModel> {
  const { assets, runtimes, ...rest } = options;
  return loadCore({ ...rest, runtimes: runtimes ?? urlRuntimes(import.meta.url, assets) });
}

/** The hub-free core with the same engine defaults. */
export function loadFromManifest(
  manifestBytes: Uint8Array,
  signature: unknown,
  options: BrowserLoadFromManifestOptions,
): Promise<EdgefleetModel> {
  const { assets, runtimes, ...rest } = options;
  return loadFromManifestCore(manifestBytes, signature, {
    ...rest,
    runtimes: runtimes ?? urlRuntimes(import.meta.url, assets),
  });
}
