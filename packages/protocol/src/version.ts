/** The edgefleet release; agents report it and the hub shows it. Keep in step with package.json. */
export const EDGEFLEET_VERSION = '0.1.0';
