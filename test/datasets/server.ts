import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Served {
  body: Buffer;
  contentType?: string;
  /** Per request number (1-based) of this path: what to do. Default: serve normally. */
  behaviour?: (request: number, req: http.IncomingMessage) => 'normal' | 'drop-half' | 'stall' | 'error-500' | 'ignore-range';
}

export interface TestServer {
  url: (path: string) => string;
  /** Request log: path and Range header. */
  log: { path: string; range?: string; cookie?: string }[];
  routes: Map<string, Served | ((req: http.IncomingMessage, res: http.ServerResponse) => void)>;
  close: () => Promise<void>;
}

/** An HTTP server on 127.0.0.1 with Range support and scripted failures (dropped, stalled, 5xx). */
export async function startServer(): Promise<TestServer> {
  const routes: TestServer['routes'] = new Map();
  const log: TestServer['log'] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    log.push({ path: url.pathname + url.search, range: req.headers.range, cookie: req.headers.cookie });
    const route = routes.get(url.pathname);
    if (!route) {
      res.writeHead(404).end('not found');
      return;
    }
    if (typeof route === 'function') {
      route(req, res);
      return;
    }
    const n = (counts.get(url.pathname) ?? 0) + 1;
    counts.set(url.pathname, n);
    const behaviour = route.behaviour?.(n, req) ?? 'normal';
    if (behaviour === 'error-500') {
      res.writeHead(500).end('busy');
      return;
    }
    let start = 0;
    const range = behaviour === 'ignore-range' ? undefined : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) start = Number(range[1]);
    if (start > route.body.length) {
      res.writeHead(416, { 'content-range': `bytes */${route.body.length}` }).end();
      return;
    }
    const slice = route.body.subarray(start);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': route.contentType ?? 'application/octet-stream',
      'content-length': slice.length,
      'accept-ranges': 'bytes',
    };
    if (range) headers['content-range'] = `bytes ${start}-${route.body.length - 1}/${route.body.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (behaviour === 'drop-half') {
      res.write(slice.subarray(0, Math.floor(slice.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
    } else if (behaviour === 'stall') {
      res.write(slice.subarray(0, 10));
      // Never finishes: the client must give up on the silent connection.
    } else res.end(slice);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (p) => `http://127.0.0.1:${port}${p}`,
    log,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
