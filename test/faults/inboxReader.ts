// The application side of the inbox, as a test client: lists held records, acknowledges
// each, and keeps the books the fault suite judges by (envelope ids, not payloads).
import type { ServiceProcess } from './harness.ts';

/** What the reader saw, by envelope id. */
export interface InboxBooks {
  /** Ids whose ack answered 200 (the app said: done). */
  acked: Set<string>;
  /** Ids whose ack got no answer (process killed mid-request) or a non-200 answer: outcome unknown. */
  uncertain: Set<string>;
  /** Ids seen in a listing (first app generation each was seen in). */
  seen: Map<string, number>;
  /** Re-appearances of an id that was not acked (redelivered after a restart): suppressed duplicates. */
  redelivered: number;
  /** Ids that re-appeared after their ack had answered 200: a double effect. */
  doubleEffects: string[];
  /** Ack answers by status (0 = network error). */
  ackStatuses: Map<number, number>;
}

/** Empty books; readers of several app instances share one (pass it as `books`). */
export function newBooks(): InboxBooks {
  return { acked: new Set(), uncertain: new Set(), seen: new Map(), redelivered: 0, doubleEffects: [], ackStatuses: new Map() };
}

/** A running reader; `stop()` ends its loop. */
export interface InboxReader {
  books: InboxBooks;
  /**
   * Acknowledges every uncertain id once more, as a client whose answer was lost retries (an ack
   * is answered 200 again by any instance once its id is applied): a 200 moves it to `acked`.
   */
  retryUncertain(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a reader loop against `app` (same URL across restarts): GET /v1/inbox, then POST
 * .../ack for every record listed, until stopped. A record listed again after a 200 ack is a
 * double effect; listed again in a later app generation without a 200 ack, a redelivery.
 */
export function startInboxReader(app: ServiceProcess, token: string, options: { concurrency?: number; books?: InboxBooks } = {}): InboxReader {
  const books: InboxBooks = options.books ?? newBooks();
  const headers = { authorization: `Bearer ${token}` };
  const lastGeneration = new Map<string, number>();
  let running = true;
  const ack = async (id: string): Promise<void> => {
    let status = 0;
    try {
      const res = await fetch(`${app.url}/v1/inbox/${id}/ack`, { method: 'POST', headers, signal: AbortSignal.timeout(10_000) });
      status = res.status;
      await res.arrayBuffer();
    } catch {
      status = 0;
    }
    books.ackStatuses.set(status, (books.ackStatuses.get(status) ?? 0) + 1);
    if (status === 200) {
      books.acked.add(id);
      books.uncertain.delete(id);
    } else if (!books.acked.has(id)) {
      books.uncertain.add(id);
    }
  };
  const loop = (async () => {
    while (running) {
      const generation = app.generation;
      let ids: string[] = [];
      try {
        const res = await fetch(`${app.url}/v1/inbox?limit=1000`, { headers, signal: AbortSignal.timeout(10_000) });
        if (res.ok) ids = ((await res.json()) as { records: Array<{ id: string }> }).records.map((r) => r.id);
        else await res.arrayBuffer();
      } catch {
        ids = [];
      }
      for (const id of ids) {
        if (books.acked.has(id)) {
          if (!books.doubleEffects.includes(id)) books.doubleEffects.push(id);
          continue;
        }
        if (!books.seen.has(id)) books.seen.set(id, generation);
        else if ((lastGeneration.get(id) ?? -1) < generation) books.redelivered++;
        lastGeneration.set(id, generation);
      }
      const todo = ids.filter((id) => !books.acked.has(id));
      const width = options.concurrency ?? 16;
      for (let i = 0; i < todo.length; i += width) await Promise.all(todo.slice(i, i + width).map(ack));
      if (ids.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    books,
    async retryUncertain() {
      const todo = [...books.uncertain].filter((id) => !books.acked.has(id));
      const width = options.concurrency ?? 16;
      for (let i = 0; i < todo.length; i += width) await Promise.all(todo.slice(i, i + width).map(ack));
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}
