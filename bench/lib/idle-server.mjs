// One peer server alone in a fresh process, for the idle-memory benchmark: RSS measured inside a
// process that ran other cases is meaningless (freed pages are reused), so each peer gets its
// own. Started by bench/idle-memory.mjs with --expose-gc; answers `measure` over IPC.
import { PEERS } from './peers.mjs';
import { settledRss } from './stats.mjs';

const peer = await PEERS[process.argv[2]]();
process.on('message', async (msg) => {
  if (msg.cmd === 'measure') {
    const rss = await settledRss();
    const { heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.send({ ev: 'measured', rss, heap: heapUsed + external, arrayBuffers });
  } else if (msg.cmd === 'close') {
    await peer.close();
    process.send({ ev: 'closed' });
    setTimeout(() => process.exit(0), 20);
  }
});
process.send({ ev: 'up', kind: peer.kind, name: peer.name, url: peer.url, headers: peer.headers });
