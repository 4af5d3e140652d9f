// The client entry (`nixfleet-sync/client`): StateSync for browsers and Node, the pure engine
// behind it, WorkerSockets to keep the socket off a page's main thread, and the shared protocol types.
export { StateSync, type StateSyncOptions, type StateSyncEvents, type StateSyncStats, type ChangeEvent, type StatusEvent, type SyncStatus, type WebSocketLike, type WebSocketConstructorLike, type PageLike, type TimerLike } from './state-sync.js';
export { SyncEngine, type EngineResult, type ResyncReason, type AppliedDelta } from './sync-engine.js';
export { WorkerSockets, type WorkerLike, type WorkerSocketsOptions, type WorkerSocketsStats } from './worker-sockets.js';
export { serveSockets, type SocketWorkerScope, type SocketWorkerOptions } from './socket-worker.js';
export { fullJitterDelay } from './backoff.js';
export type { FleetState, FullState, Change, Host, Command, Pipeline, EventLogEntry, Limits } from '../protocol/index.js';
