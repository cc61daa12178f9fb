import { EventEmitter } from 'node:events';

/** Where a partner's submission stands, as the interface knows it. */
export type SubmissionStatus = 'accepted' | 'queued' | 'held' | 'acknowledged' | 'rejected' | 'dead-lettered';

/** One change of a submission's status: ids and codes only, never PHI. */
export interface SubmissionStatusEvent {
  /** The envelope id the partner was given with 202. */
  readonly submissionId: string;
  /** The partner id (the `name` in the partners file) that submitted it. */
  readonly partner: string;
  readonly status: SubmissionStatus;
  /** A `CR_*` reason code for `rejected` and `dead-lettered`. */
  readonly reasonCode?: string;
  /** ISO 8601 time of the change. */
  readonly at: string;
}

/** Receives status changes; the partner status callbacks subscribe here. */
export type SubmissionStatusListener = (event: SubmissionStatusEvent) => void;

/** The interface's one channel of submission status changes: the status store publishes, callbacks listen. */
export class SubmissionStatusEvents {
  readonly #emitter = new EventEmitter();

  /** Tells every listener; a listener that throws does not stop the others. */
  publish(event: SubmissionStatusEvent): void {
    for (const listener of this.#emitter.listeners('status') as SubmissionStatusListener[]) {
      try {
        listener(event);
      } catch {
        // A listener owns its own failures (it logs them); the status change itself stands.
      }
    }
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: SubmissionStatusListener): () => void {
    this.#emitter.on('status', listener);
    return () => this.#emitter.off('status', listener);
  }
}
