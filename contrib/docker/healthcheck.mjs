// The container's HEALTHCHECK (slim images have no curl): GET /healthz of the server in this
// container, at the port of NIXFLEET_LISTEN, over HTTPS when NIXFLEET_TLS_CERT is set. Exit 0
// when it answers 200 with {"status":"ok"}, 1 otherwise (within 4 s). Plain Node, no imports
// from the package, so it also runs on its own: `node contrib/docker/healthcheck.mjs`.
import http from 'node:http';
import https from 'node:https';

const listen = process.env.NIXFLEET_LISTEN || '127.0.0.1:8000';
const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
const fail = (why) => {
  process.stderr.write(`healthcheck: ${why}\n`);
  process.exit(1);
};
if (!match) fail(`cannot read NIXFLEET_LISTEN "${listen}"`);
const listenHost = match[1] ?? match[2] ?? '';
// A wildcard address is reached on loopback; a named address as it is.
const host = ['', '0.0.0.0', '::'].includes(listenHost) ? '127.0.0.1' : listenHost;
const secure = Boolean(process.env.NIXFLEET_TLS_CERT);

const request = (secure ? https : http).get(
  { host, port: Number(match[3]), path: '/healthz', timeout: 4000, rejectUnauthorized: false },
  (response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => (body += chunk));
    response.on('end', () => {
      if (response.statusCode !== 200) fail(`/healthz answered ${response.statusCode}`);
      let status;
      try {
        status = JSON.parse(body).status;
      } catch {
        fail('/healthz did not answer JSON');
      }
      if (status !== 'ok') fail(`/healthz status is ${status}`);
      process.exit(0);
    });
  },
);
request.on('timeout', () => {
  request.destroy();
  fail('no answer from /healthz within 4 s');
});
request.on('error', (error) => fail(`${host}:${match[3]}: ${error.message}`));
