export { type AgentOptions, type RunningAgent, startAgent } from './agent.ts';
export { AgentError } from './errors.ts';
export type { InferenceObserver } from './inference/observer.ts';
export type { InferenceBackend, ModelSession } from './runtime/backend.ts';
