// A TCP relay in front of the media origin for the browser tests: it passes bytes through
// untouched, except that the test can slow the browser-to-origin direction down on the wire
// (DevTools' upload throttling only paces the page's progress events: the socket still takes
// the whole body at once, so a "paused" upload would already be complete on the origin), and
// can keep the origin's side open when the browser's side closes, as a connection dropped
// somewhere on the way does (the origin sees no FIN and waits for the rest of the body).

import net from 'node:net';

/**
 * Listens on a free local port; `target()` answers the origin's port (known later). Returns
 * `{ port, setUploadRate(bytesPerSec | null), holdOriginSide(bool), cutBrowserSide(), settled(),
 * close() }`; `settled()` resolves once no connection has bytes queued for the origin (each
 * was sent or dropped with its closed browser side): lifting the rate before that would let
 * a request the page just aborted reach the origin whole.
 * `cutBrowserSide()` resets every connection's browser side now (the origin's side closes too,
 * unless held).
 */
export async function startWireRelay(target) {
  let rate = null;
  let hold = false;
  const sockets = new Set();
  const browserSides = new Set();
  const queued = new Set(); // connections with bytes waiting for the origin
  const server = net.createServer((client) => {
    const origin = net.connect(target(), '127.0.0.1');
    sockets.add(client).add(origin);
    browserSides.add(client);
    client.on('close', () => {
      sockets.delete(client);
      browserSides.delete(client);
    });
    origin.on('close', () => sockets.delete(origin));
    origin.on('error', () => client.destroy());
    client.on('error', () => {});
    origin.pipe(client);
    // Browser to origin, paced in 10 ms slices when a rate is set. The browser's side is read as
    // fast as it sends (never paused), so its close is seen at once and what was still queued
    // is dropped, as on a connection that died: nothing more reaches the origin.
    let queue = [];
    let timer = null;
    let clientGone = false;
    const pump = () => {
      timer = null;
      if (clientGone) return;
      let budget = rate ? Math.max(1, Math.floor(rate / 100)) : Infinity;
      while (queue.length && budget > 0) {
        const chunk = queue[0];
        const n = Math.min(chunk.length, budget);
        origin.write(chunk.subarray(0, n));
        budget -= n;
        if (n === chunk.length) queue.shift();
        else queue[0] = chunk.subarray(n);
      }
      if (queue.length) timer = setTimeout(pump, 10);
      else queued.delete(pump);
    };
    client.on('data', (d) => {
      queue.push(d);
      queued.add(pump);
      if (!timer) pump();
    });
    client.on('close', () => {
      clientGone = true;
      queue = [];
      queued.delete(pump);
      // A dropped connection: the origin is not told.
      if (!hold) origin.end();
    });
    origin.on('end', () => client.end());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    setUploadRate(r) {
      rate = r;
    },
    holdOriginSide(h) {
      hold = h;
    },
    async settled() {
      while (queued.size) await new Promise((resolve) => setTimeout(resolve, 10));
    },
    cutBrowserSide() {
      for (const c of browserSides) c.resetAndDestroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
