import { EDGEFLEET_VERSION } from '@edgefleet/protocol';

/** The SDK reports itself to the hub as `edgefleet-web/<version>`. */
export const SDK_VERSION = EDGEFLEET_VERSION;
