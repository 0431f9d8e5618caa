export * from './digest.ts';
export * from './errors.ts';
export * from './manifest.ts';
export * from './pack.ts';
export * from './signing.ts';
export * from './smoke-test.ts';
export * from './versions.ts';
