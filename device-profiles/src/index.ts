/**
 * @edgefleet/device-profiles: what each kind of device can run, how the agent recognises it, and
 * which artifact of a model version it should get.
 */
export * from './builtin.ts';
export * from './choose.ts';
export * from './detect.ts';
export * from './errors.ts';
export * from './facts.ts';
export * from './schema.ts';
export * from './validate.ts';
