/** The architectures `edgefleet flash` packages for. */
export declare const ARCHES: readonly ['arm64', 'x64'];
/** The directory holding an arch's runtime project (its node_modules has the Node binary and sharp's prebuilts). */
export declare function runtimeDir(arch: string, root?: string): string;
/** Whether an arch's runtime project is installed at its pinned versions. */
export declare function runtimeReady(arch: string, root?: string): boolean;
/** Install an arch's runtime project from the npm registry; false when it was already there. */
export declare function prepareRuntime(arch: string, options?: { quiet?: boolean; root?: string }): boolean;
