import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CallbackSender } from './callbacks.ts';
import { Faults } from './faults.ts';
import { Lifecycle } from './lifecycle.ts';
import { handle, type RecordedRequest, type RouterContext } from './server.ts';
import { FakeStore, type FakeMessage, type FakeStatus, type Outcome } from './store.ts';

export type { CallbackRecord } from './callbacks.ts';
export type { FaultSpec, HoldSpec } from './faults.ts';
export type { RecordedRequest } from './server.ts';
export type { FakeMessage, FakeMedia, FakeStatus, Outcome } from './store.ts';
export { signCallback } from './signature.ts';

/** Options for {@link startFakeSignalWire}. */
export interface FakeSignalWireOptions {
  /** Project id (AccountSid); random when omitted. */
  projectId?: string;
  /** API token; random when omitted. */
  token?: string;
  /** Signing Key that signs status callbacks; random when omitted. */
  signingKey?: string;
  /** Milliseconds per status step (default 50). */
  stepMs?: number;
  /** Manual step mode: no timers, tests call `step`/`settle` (default false). */
  manual?: boolean;
  /** Final outcome when nothing else is configured (default `delivered`). */
  defaultOutcome?: Outcome;
  /** The sending number a service is given (default {@link FAKE_FROM_NUMBER}). */
  fromNumber?: string;
}

/** The sending number the fake hands out unless told otherwise. */
export const FAKE_FROM_NUMBER = '+15550009999';

/** Seeds a message straight into the store (no HTTP, no callbacks): for large sweeps. */
export interface SeedInput {
  /** Destination number. */
  to?: string;
  /** Sending number. */
  from?: string;
  /** Text. */
  body?: string;
  /** Media URLs (one media item each). */
  mediaUrls?: string[];
  /** Status it is in (default `delivered`). */
  status?: FakeStatus;
  /** Creation/sent time (default now). */
  date?: Date;
}

/** A running fake SignalWire space. */
export interface FakeSignalWire {
  /** Base URL, e.g. `http://127.0.0.1:40123` (serves with and without `/api/laml`). */
  url: string;
  /** Host and port, as the SDK's `signalwireSpaceUrl` takes it. */
  host: string;
  /** Project id (AccountSid). */
  projectId: string;
  /** API token. */
  token: string;
  /** Signing Key for callbacks. */
  signingKey: string;
  /** Messages and media. */
  store: FakeStore;
  /** Every request received. */
  requests: RecordedRequest[];
  /** Status callback controls: `holding`, `release()`, `dropNext()`, `dropWhere()`, `repeat`, `replay()`, `sent`. */
  callbacks: CallbackSender;
  /** Failure injection: `inject({count, status, retryAfter?, nonJson?, method?, path?})`. */
  faults: Faults;
  /** Lifecycle options (`stepMs`, `manual`), changeable at run time. */
  lifecycle: Lifecycle;
  /** Outcome for messages sent to `to`. */
  setOutcome(to: string, outcome: Outcome): void;
  /** Outcome for the next created message (queued; each is consumed once). */
  nextOutcome(outcome: Outcome): void;
  /** Advances a message by one status (manual mode); returns the new status. */
  step(sid: string): FakeStatus | undefined;
  /** Advances a message to the end of its lifecycle. */
  settle(sid: string): FakeStatus | undefined;
  /** Seeds a message directly. */
  seed(input?: SeedInput): FakeMessage;
  /** A live message by sid. */
  message(sid: string): FakeMessage | undefined;
  /** Media remaining for a message sid (also after the message was deleted). */
  mediaOf(sid: string): ReturnType<FakeStore['mediaOf']>;
  /**
   * The environment the app service needs to send through this fake: the SIGNALWIRE_*
   * variables (insecure http allowed: the fake is on loopback) and, when the app's own
   * URL is given, PUBLIC_BASE_URL for its status callbacks.
   */
  serviceEnv(appUrl?: string): Record<string, string>;
  /** Stops timers and the server. */
  stop(): Promise<void>;
}

/** Starts a fake SignalWire Compatibility REST API on 127.0.0.1 (random port). */
export async function startFakeSignalWire(options: FakeSignalWireOptions = {}): Promise<FakeSignalWire> {
  const projectId = options.projectId ?? randomUUID();
  const token = options.token ?? 'PT' + randomBytes(24).toString('hex');
  const signingKey = options.signingKey ?? 'PSK_' + randomBytes(18).toString('base64url');
  const fromNumber = options.fromNumber ?? FAKE_FROM_NUMBER;
  const now = () => new Date();
  const store = new FakeStore(now);
  const callbacks = new CallbackSender(signingKey);
  const lifecycle = new Lifecycle(store, callbacks, now, { stepMs: options.stepMs ?? 50, manual: options.manual ?? false });
  const faults = new Faults();
  const requests: RecordedRequest[] = [];
  const ctx: RouterContext = {
    projectId, token, store, lifecycle, callbacks, faults, requests,
    nextOutcomes: [], outcomeByNumber: new Map(), defaultOutcome: options.defaultOutcome ?? 'delivered',
  };
  const server = createServer((req, res) => {
    handle(req, res, ctx).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  return {
    url: `http://${host}`,
    host,
    projectId,
    token,
    signingKey,
    store,
    requests,
    callbacks,
    faults,
    lifecycle,
    setOutcome: (to, outcome) => void ctx.outcomeByNumber.set(to, outcome),
    nextOutcome: (outcome) => void ctx.nextOutcomes.push(outcome),
    step: (sid) => lifecycle.step(sid),
    settle: (sid) => lifecycle.settle(sid),
    seed: (input = {}) =>
      store.create({
        accountSid: projectId,
        to: input.to ?? '+15550000001',
        from: input.from ?? fromNumber,
        body: input.body ?? 'seeded',
        mediaUrls: input.mediaUrls ?? [],
        outcome: 'delivered',
        status: input.status ?? 'delivered',
        ...(input.date ? { dateCreated: input.date } : {}),
      }),
    message: (sid) => store.messages.get(sid),
    mediaOf: (sid) => store.mediaOf(sid),
    serviceEnv: (appUrl) => ({
      SIGNALWIRE_PROJECT_ID: projectId,
      SIGNALWIRE_API_TOKEN: token,
      SIGNALWIRE_SPACE_URL: `http://${host}`,
      SIGNALWIRE_SIGNING_KEY: signingKey,
      SIGNALWIRE_FROM_NUMBER: fromNumber,
      SIGNALWIRE_ALLOW_INSECURE: 'true',
      ...(appUrl ? { PUBLIC_BASE_URL: appUrl } : {}),
    }),
    stop: async () => {
      lifecycle.stop();
      await callbacks.idle();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
