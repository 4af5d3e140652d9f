// The script of the dashboard's socket worker (built to dist/dashboard/socket-worker.js), and the
// worker entry for apps that embed the client: `new Worker(url of this module, { type: 'module' })`.
import { serveSockets, type SocketWorkerScope } from './socket-worker.js';

serveSockets(globalThis as unknown as SocketWorkerScope);
