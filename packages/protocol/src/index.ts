export * from './agent-release.ts';
export * from './api.ts';
export * from './browser.ts';
export * from './errors.ts';
export * from './messages.ts';
export * from './topics.ts';
export * from './version.ts';
