import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One request a receiver got: headers and the exact body bytes. */
export interface ReceivedCallback {
  headers: Record<string, string | string[] | undefined>;
  body: string;
  at: number;
}

/** What the receiver does with the next request: answer a status, hang, or redirect. */
export type ReceiverBehaviour = number | 'hang' | { redirect: string };

/** A partner's callback endpoint for tests (HTTPS with a given certificate, or plain http on loopback). */
export interface WebhookReceiver {
  url: string;
  /** Every request, in order. */
  received: ReceivedCallback[];
  /** Behaviours for the next requests, consumed in order; then `fallback`. */
  script: ReceiverBehaviour[];
  /** What it does once the script is used up; default 200. */
  fallback: ReceiverBehaviour;
  stop(): Promise<void>;
}

/** A fresh Standard Webhooks secret (`whsec_` + base64 of 32 random bytes). */
export function newWhsec(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * Verifies a received callback with the Standard Webhooks reference library (an
 * implementation independent of the relay's): throws unless a signature matches `secret`.
 */
export function verifyWithReference(secret: string, callback: ReceivedCallback): unknown {
  const h = (name: string): string => String(callback.headers[name] ?? '');
  return new Webhook(secret).verify(callback.body, { 'webhook-id': h('webhook-id'), 'webhook-timestamp': h('webhook-timestamp'), 'webhook-signature': h('webhook-signature') });
}

/** Starts a receiver on 127.0.0.1: HTTPS when `tls` is given, else plain http. */
export async function startWebhookReceiver(tls?: { cert: Buffer | string; key: Buffer | string }): Promise<WebhookReceiver> {
  const hanging = new Set<ServerResponse>();
  const receiver: WebhookReceiver = { url: '', received: [], script: [], fallback: 200, stop: async () => undefined };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.received.push({ headers: { ...req.headers }, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const behaviour = receiver.script.shift() ?? receiver.fallback;
      if (behaviour === 'hang') {
        hanging.add(res);
        return;
      }
      if (typeof behaviour === 'object') {
        res.writeHead(302, { location: behaviour.redirect }).end();
        return;
      }
      res.writeHead(behaviour, { 'content-type': 'text/plain' }).end(`receiver body ${behaviour}`);
    });
  };
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handle) : createHttpServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  receiver.url = `${tls ? 'https' : 'http'}://${tls ? 'localhost' : '127.0.0.1'}:${port}/hooks/care-relay`;
  receiver.stop = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return receiver;
}
