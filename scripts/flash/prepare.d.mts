/** The architectures `edgefleet flash` packages for. */
export declare const ARCHES: readonly ['arm64', 'x64'];
/** The directory holding an arch's runtime project (its node_modules has the Node binary and sharp's prebuilts). */
export declare function runtimeDir(arch: string, root?: string): string;
/** Whether an arch's runtime project is installed at its pinned versions. */
export declare function runtimeReady(arch: string, root?: string): boolean;
/** Install an arch's runtime project from the npm registry; false when it was already there. */
export declare function prepareRuntime(arch: string, options?: { quiet?: boolean; root?: string }): boolean;
/** tfjs-tflite-node's directory names (cc_deps/…) for TFLite's C library per arch. */
export declare const TFLITE_CC_DEPS: { readonly arm64: 'linux_arm64'; readonly x64: 'linux_amd64' };
/** Where the cross-built tfjs-tflite-node binding for an arch is kept. */
export declare function tfliteBindingPath(arch: string, root?: string): string;
/** Cross-build tfjs-tflite-node's binding for an arch (offline); the binding's path, or why not. */
export declare function buildTfliteBinding(
  arch: string,
  options?: { quiet?: boolean; root?: string },
): { path: string; reason?: undefined } | { path?: undefined; reason: string };
/** The machine an ELF file is built for, from its header ('other' when missing or not ELF). */
export declare function elfMachine(path: string): 'x64' | 'arm64' | 'other';
