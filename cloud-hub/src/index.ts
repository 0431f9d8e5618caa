export type { HubContext } from './context.ts';
export { type Hub, type HubOptions, startHub } from './hub.ts';
