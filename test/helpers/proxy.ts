import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request through {@link startProxy}, read whole. */
export interface ProxiedRequest {
  /** HTTP method. */
  method: string;
  /** Path and query. */
  path: string;
  /** Request headers. */
  headers: IncomingHttpHeaders;
  /** Request body (empty when none). */
  body: Buffer;
}

/** An answer the proxy gives itself instead of passing the request on. */
export interface ProxyAnswer {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** A running proxy. */
export interface TestProxy {
  /** Its base URL (loopback). */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * A loopback HTTP proxy in front of an emulator: `see` is shown every request and may answer it
 * itself; the rest go on to `upstream` and come back as answered. The Host header is dropped on the
 * way, so this suits endpoints that check no request signature (the in-process emulators, LocalStack).
 */
export async function startProxy(upstream: string, see: (req: ProxiedRequest) => ProxyAnswer | undefined = () => undefined): Promise<TestProxy> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      const own = see(request);
      if (own) {
        res.writeHead(own.status, own.headers);
        res.end(own.body);
        return;
      }
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'content-length', 'connection'].includes(k))) as Record<string, string>;
      fetch(`${upstream}${request.path}`, { method: request.method, headers, body: request.body.length > 0 ? request.body : undefined })
        .then(async (r) => {
          res.writeHead(r.status, Object.fromEntries(r.headers));
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
