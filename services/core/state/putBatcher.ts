import { BATCH_WRITE_MAX, PartialPutError, type StateItem, type StateTable } from './table.ts';

/** Unconditional puts of many concurrent callers, written together. */
export interface PutBatcher {
  /** Writes `item` (replacing any item of its key); resolves once the store has it, rejects when the write failed. */
  put(item: StateItem): Promise<void>;
}

interface Waiting {
  item: StateItem;
  settle: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}

/**
 * Group commit for unconditional puts: a put made while none is being written goes out at once
 * (after this turn of the event loop, so the puts of one turn go together); puts made while a
 * write is in flight wait for it and then go out together, in calls of up to
 * {@link BATCH_WRITE_MAX} items (`table.putMany`, one BatchWriteItem each). Nobody waits for a timer; under concurrency the
 * calls per put fall. Two puts of one key in the same batch are written once, the later item.
 */
export function createPutBatcher(table: StateTable): PutBatcher {
  let waiting = new Map<string, Waiting>();
  let writing = false;

  async function writeAll(): Promise<void> {
    writing = true;
    while (waiting.size > 0) {
      const batch = [...waiting.values()];
      waiting = new Map();
      const chunks: Waiting[][] = [];
      for (let i = 0; i < batch.length; i += BATCH_WRITE_MAX) chunks.push(batch.slice(i, i + BATCH_WRITE_MAX));
      await Promise.all(
        chunks.map(async (chunk) => {
          try {
            await table.putMany(chunk.map((w) => w.item));
            for (const w of chunk) for (const s of w.settle) s.resolve();
          } catch (err) {
            // After a partial write only the items the store did not take fail, each with its own error.
            const partial = err instanceof PartialPutError ? err.failed : undefined;
            for (const w of chunk) {
              const written = partial !== undefined && !partial.has(w.item.pk);
              for (const s of w.settle) {
                if (written) s.resolve();
                else s.reject(partial ? partial.get(w.item.pk) : err);
              }
            }
          }
        }),
      );
    }
    writing = false;
  }

  return {
    put(item) {
      return new Promise<void>((resolve, reject) => {
        const known = waiting.get(item.pk);
        if (known) {
          known.item = item;
          known.settle.push({ resolve, reject });
        } else {
          waiting.set(item.pk, { item, settle: [{ resolve, reject }] });
        }
        if (!writing) {
          writing = true;
          setImmediate(() => void writeAll());
        }
      });
    },
  };
}
