import { bodyBytes } from '../../core/envelope/envelope.ts';
import { isPointerEnvelope } from '../../core/objects/pointer.ts';
import { MllpConnection, type MllpEndpoint } from '../mllp/connection.ts';
import { Hl7ParseError, parseHl7, readAck } from '../mllp/hl7.ts';
import type { EmrClient, EmrOutcome } from './emrClient.ts';

/** Options for {@link createMllpClient}. */
export interface MllpClientOptions extends MllpEndpoint {
  /** Milliseconds to wait for the ACK after the message was written. */
  ackTimeoutMs: number;
  /** Deliveries answered AE/CE are dead-lettered (with the reason) on this attempt. */
  maxAttempts: number;
  /** Persistent connections; 1 keeps the order of deliveries. */
  connections?: number;
}

/** An EMR client over MLLP; `close()` ends its connections (service stop). */
export interface MllpClient extends EmrClient {
  /** Closes every connection. */
  close(): void;
}

/**
 * Delivers HL7 v2 chart updates over MLLP and lets the ACK decide: `AA`/`CA` delivered;
 * `AE`/`CE` retried, then dead-lettered after `maxAttempts`; `AR`/`CR` dead-lettered at
 * once; an ACK for another `MSH-10`, an unreadable answer, a closed socket or no answer
 * within the timeout are retried. Nothing counts as delivered without a matching positive ACK.
 * One exception to the match: an `AR`/`CR` with an empty `MSA-2` (the EMR could not read the
 * message, so could not name it) is the answer to the message just sent, and dead-letters it.
 * A repeated ACK for a message already answered on the connection (an application ACK after
 * the commit ACK) is discarded by the connection.
 * An update too large for one SQS message (it came through S3) is not sent: an MLLP frame is
 * read whole by the receiving engine, so it is dead-lettered at once (`CR_MLLP_MESSAGE_TOO_LARGE`).
 */
export function createMllpClient(options: MllpClientOptions): MllpClient {
  if (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1) throw new RangeError(`maxAttempts: expected a positive integer, got ${options.maxAttempts}`);
  const pool = Array.from({ length: options.connections ?? 1 }, () => new MllpConnection(options));
  let next = 0;
  return {
    async deliver(envelope, signal): Promise<EmrOutcome> {
      if (isPointerEnvelope(envelope)) return { kind: 'rejected', reason: 'CR_MLLP_MESSAGE_TOO_LARGE' };
      const message = Buffer.from(bodyBytes(envelope));
      let controlId: string;
      try {
        controlId = parseHl7(message).controlId;
      } catch (err) {
        if (err instanceof Hl7ParseError) return { kind: 'rejected', reason: 'CR_MLLP_MESSAGE_MALFORMED' };
        throw err;
      }
      const connection = pool[next++ % pool.length]!;
      const exchange = await connection.exchange(message, options.ackTimeoutMs, signal, controlId);
      if (exchange.kind === 'failed') return { kind: 'transient', reason: exchange.reason };
      let ack: ReturnType<typeof readAck>;
      try {
        ack = readAck(exchange.payload);
      } catch {
        connection.reset();
        return { kind: 'transient', reason: 'CR_MLLP_ACK_MALFORMED' };
      }
      const unreadable = ack.controlId === '' && (ack.code === 'AR' || ack.code === 'CR');
      if (ack.controlId !== controlId && !unreadable) {
        // The stream is out of step with what we sent: start over on a fresh connection.
        connection.reset();
        return { kind: 'transient', reason: 'CR_MLLP_ACK_MISMATCH' };
      }
      const reason = `CR_MLLP_ACK_${ack.code}`;
      switch (ack.code) {
        case 'AA':
        case 'CA':
          return { kind: 'delivered', ackCode: ack.code };
        case 'AR':
        case 'CR':
          return { kind: 'rejected', reason, ackCode: ack.code };
        default:
          return { kind: 'transient', reason, ackCode: ack.code, deadLetterOnAttempt: options.maxAttempts };
      }
    },
    close() {
      for (const connection of pool) connection.close();
    },
  };
}
