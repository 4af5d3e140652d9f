// The shared protocol: entity and change schemas, the fleet-state reducer and the wire frames.
export * from './schema.js';
export * from './fleet-state.js';
export * from './messages.js';
