// The shared protocol: entity and change schemas, the fleet-state reducer, the wire frames, the
// name rules and the HTTP API contract.
export * from './schema.js';
export * from './fleet-state.js';
export * from './messages.js';
export * from './api.js';
export * from './api-schemas.js';
