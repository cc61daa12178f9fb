import type { FastifyInstance } from 'fastify';
import type { ReadinessCheck } from '../http/health.ts';
import { closeHttpServer } from '../http/server.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import type { Consumer } from '../transport/consumerTypes.ts';
import type { Runtime } from './runtime.ts';

/** A queue consumer a service runs, with the longest its stop may wait for held messages. */
export interface ManagedConsumer {
  /** The consumer. */
  consumer: Consumer;
  /** Milliseconds `stop` waits for its held messages before releasing them. */
  deadlineMs: number;
}

/** What a service wires on its runtime: its HTTP server and its consumers (plus whatever else it exposes). */
export interface ServiceParts {
  /** The HTTP server (routes registered, not yet listening). */
  server: FastifyInstance;
  /** The consumers, started by the lifecycle. */
  consumers: ManagedConsumer[];
  /** Other listeners (MLLP intake): they stop accepting with the HTTP server, before the consumers stop. */
  listeners?: Array<{ close(deadlineMs: number): Promise<void> }>;
  /** Outbound connections (MLLP delivery): closed once the consumers have stopped. */
  connections?: Array<{ close(): void | Promise<void> }>;
  /**
   * Called as `stop` begins, before the consumers stop: what the messages in flight wait on and would
   * otherwise wait out (the app's receipts lingering for company) goes at once.
   */
  stopping?: Array<() => void>;
}

/** Options for {@link startServiceLifecycle}. */
export interface ServiceLifecycleOptions<Q extends LogicalQueue, P extends ServiceParts> {
  /** Builds the runtime (keys, audit, SQS, crypto); it is closed again when anything later fails. */
  runtime: () => Promise<Runtime<Q>>;
  /**
   * Wires the service on the runtime. `running` is the lifecycle's readiness check: false
   * until the server listens and again from the moment `stop` begins.
   */
  wire: (rt: Runtime<Q>, running: ReadinessCheck) => Promise<P>;
  /** Where to listen; false for `inject()`-only use (the server is only made ready). */
  listen: { port: number; host: string } | false;
  /** Milliseconds `stop` lets HTTP requests in flight finish; connections still open then are closed. */
  httpDeadlineMs: number;
}

/** A started service: its runtime, its parts and the one way to stop it. */
export interface ServiceLifecycle<Q extends LogicalQueue, P extends ServiceParts> {
  /** The runtime. */
  runtime: Runtime<Q>;
  /** What `wire` returned. */
  parts: P;
  /** True between a completed start and the beginning of `stop`. */
  readonly running: boolean;
  /** Graceful stop, in order; calling it again returns the same promise. */
  stop(): Promise<void>;
}

/**
 * Starts a service the one way both services start: the runtime, then the service's
 * wiring, then its consumers (paused at once in emergency mode, and paused/resumed by
 * the emergency switch), then the server listens and the service reports ready.
 *
 * Stopping goes the other way: not ready, the server (and any other listener) stops
 * accepting requests (those in flight finish; connections still open at `httpDeadlineMs` are
 * closed), the parts' `stopping` hooks run, the consumers stop within their deadlines (held
 * messages are released), the servers finish closing, outbound connections close, the runtime
 * closes. A failure during start undoes what was started in the same order and rethrows.
 */
export async function startServiceLifecycle<Q extends LogicalQueue, P extends ServiceParts>(
  options: ServiceLifecycleOptions<Q, P>,
): Promise<ServiceLifecycle<Q, P>> {
  const rt = await options.runtime();
  let running = false;
  let stopping: Promise<void> | undefined;
  let parts: P | undefined;

  const shutdown = async (): Promise<void> => {
    running = false;
    // One deadline for the whole stop: HTTP connections still open at it are closed.
    const closing = parts ? closeHttpServer(parts.server, options.httpDeadlineMs) : undefined;
    const listening = Promise.all((parts?.listeners ?? []).map((l) => l.close(options.httpDeadlineMs)));
    try {
      for (const begin of parts?.stopping ?? []) begin();
      await Promise.all((parts?.consumers ?? []).map(({ consumer, deadlineMs }) => consumer.stop({ deadlineMs })));
      await Promise.all([closing, listening]);
      await Promise.all((parts?.connections ?? []).map((c) => c.close()));
    } finally {
      await rt.close();
    }
  };
  const stop = (): Promise<void> => (stopping ??= shutdown());

  try {
    parts = await options.wire(rt, () => running);
    const consumers = parts.consumers.map((c) => c.consumer);
    rt.emergency.onChange((active) => {
      if (stopping) return;
      for (const c of consumers) {
        if (active) c.pause();
        else c.resume();
      }
    });
    for (const c of consumers) {
      c.start();
      if (rt.emergency.active) c.pause();
    }
    if (options.listen) await parts.server.listen({ port: options.listen.port, host: options.listen.host });
    else await parts.server.ready();
    running = true;
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    runtime: rt,
    parts,
    get running() {
      return running;
    },
    stop,
  };
}
