import type { Envelope } from '../../core/envelope/envelope.ts';
import { emrBodyOf, IdleTimeout, streamFailure, type OpenLargePayload } from './emrBody.ts';

/**
 * How one delivery attempt ended. `status` is the HTTP status, `ackCode` the HL7 ACK code
 * (MLLP): what a delivery receipt carries. `deadLetterOnAttempt`: a transient failure that
 * is dead-lettered with its reason once the message has been received that many times.
 */
export type EmrOutcome =
  | { kind: 'delivered'; status?: number; ackCode?: string }
  | { kind: 'transient'; reason: string; retryAfterSeconds?: number; ackCode?: string; deadLetterOnAttempt?: number }
  | { kind: 'rejected'; reason: string; ackCode?: string };

/** Options for {@link createEmrClient}. */
export interface EmrClientOptions {
  /** The EMR interface engine endpoint (HTTP or HTTPS). */
  url: string;
  /** Bearer token the endpoint expects, if any. */
  authToken?: string;
  /** Milliseconds before an attempt is abandoned (counts as transient). */
  timeoutMs: number;
  /** fetch implementation (tests). */
  fetch?: typeof fetch;
  /** Opens a checked large chart update's plaintext (LARGE_OBJECT_BUCKET): it is streamed to the EMR, never held whole. */
  openLarge?: OpenLargePayload | undefined;
}

/** Posts chart updates to the EMR with the envelope id as the idempotency key. */
export interface EmrClient {
  /** One attempt; never throws: the outcome says whether to retry. */
  deliver(envelope: Envelope, signal: AbortSignal): Promise<EmrOutcome>;
}

function retryAfterSeconds(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 43_200);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.min((date - Date.now()) / 1000, 43_200));
}

/**
 * The EMR delivery client. 2xx is delivered; a timeout, a network error, 408, 429 and
 * 5xx are transient (retried with backoff until the redrive moves the message to the
 * DLQ); any other status is a permanent rejection (dead-lettered at once with the status).
 */
export function createEmrClient(options: EmrClientOptions): EmrClient {
  const doFetch = options.fetch ?? fetch;
  return {
    async deliver(envelope, signal) {
      // EMR_TIMEOUT_MS bounds each wait: for the answer, and between two pieces of a streamed body.
      const timeout = new IdleTimeout(options.timeoutMs);
      let response: Response;
      const body = await emrBodyOf(envelope, options.openLarge, timeout);
      try {
        if (body.kind === 'unavailable') return { kind: 'transient', reason: body.reason };
        response = await doFetch(options.url, {
          method: 'POST',
          headers: {
            'content-type': body.contentType,
            'content-length': String(body.bytes),
            'idempotency-key': envelope.id,
            'x-care-relay-kind': envelope.kind,
            'x-care-relay-sent-at': envelope.sentAt,
            ...(options.authToken ? { authorization: `Bearer ${options.authToken}` } : {}),
          },
          body: body.body,
          duplex: 'half',
          signal: AbortSignal.any([signal, timeout.signal]),
          redirect: 'error',
        } as RequestInit);
        // The answer's body is the EMR's business; drain it without reading it into logs.
        await response.arrayBuffer().catch(() => undefined);
      } catch (err) {
        const failed = streamFailure(body);
        if (failed) return { kind: 'transient', reason: failed };
        if (timeout.signal.aborted) return { kind: 'transient', reason: 'CR_EMR_TIMEOUT' };
        const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
        return { kind: 'transient', reason: `CR_EMR_UNREACHABLE_${String(code).replace(/[^A-Z0-9_]/gi, '').toUpperCase()}`.slice(0, 64) };
      } finally {
        timeout.clear();
        // The object's read ends with the attempt, whatever became of the request.
        if (body.kind === 'ready') body.release?.();
      }
      const status = response.status;
      if (status >= 200 && status < 300) return { kind: 'delivered', status };
      const after = retryAfterSeconds(response.headers.get('retry-after'));
      if (status === 408 || status === 429 || status >= 500) {
        return { kind: 'transient', reason: `CR_EMR_HTTP_${status}`, ...(after === undefined ? {} : { retryAfterSeconds: after }) };
      }
      return { kind: 'rejected', reason: `CR_EMR_HTTP_${status}` };
    },
  };
}
