// Holds N idle authenticated WebSocket connections to a gateway, one user
// each, then makes one call on the last to show they are still served.
// node --experimental-websocket hold.mjs <ws[s]://host:port/ws> <jwt-secret> <n> [echo]
// With `echo`, each socket first makes one demo.echo call and waits for its
// result (a worker must serve `demo`), so the sockets are idle after use.
// (for wss with a self-signed certificate: NODE_TLS_REJECT_UNAUTHORIZED=0)
import crypto from 'node:crypto';

const [base, secret, count, mode] = process.argv.slice(2);
const n = Number(count);
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function token(sub) {
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const sockets = [];
let open = 0;
let failed = 0;
for (let i = 0; i < n; i++) {
  await new Promise((resolve) => {
    const s = new WebSocket(`${base}?token=${token(`idle-${i}`)}`);
    s.onopen = () => {
      open++;
      if (mode !== 'echo') return resolve();
      s.onmessage = (e) => { if (JSON.parse(e.data).id === 0) { s.onmessage = null; resolve(); } };
      s.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'demo.echo', params: { i } }));
    };
    s.onerror = () => { failed++; resolve(); };
    sockets.push(s);
  });
}
console.log(`open ${open} failed ${failed}`);
const last = sockets.findLast((s) => s.readyState === WebSocket.OPEN);
if (last) {
  last.onmessage = (e) => console.log(`answer ${e.data}`);
  last.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'rpc.status', params: { jobId: 'x' } }));
}
setInterval(() => {}, 1 << 30);
