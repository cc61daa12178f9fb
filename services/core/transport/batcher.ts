// Coalesces single operations issued at about the same time into one SQS batch call:
// a batch leaves as soon as it is full, or after a short linger. Settling each item
// (from the batch call's per-entry results) is the job of `run`, never assumed here.

/** Options for {@link createBatcher}. */
export interface BatcherOptions<T> {
  /** Most items per batch (SQS: 10). */
  maxEntries: number;
  /** Most bytes per batch, as counted by `sizeOf`; unbounded when omitted. */
  maxBytes?: number;
  /** Bytes of one item, for `maxBytes`. */
  sizeOf?: (item: T) => number;
  /** How long the first item of a batch waits for company, ms; 0 = until the next turn of the event loop (setImmediate). */
  lingerMs: number;
  /** Sends one batch; it must settle every item itself (resolve or reject its caller). */
  run: (items: T[]) => Promise<void>;
  /** Called with the items of a batch whose `run` threw, so their callers are settled anyway. */
  onRunError: (items: T[], err: unknown) => void;
}

/** Collects items into batches. */
export interface Batcher<T> {
  /** Queues one item; its batch leaves when full, when the next item would not fit, or after the linger. */
  add(item: T): void;
  /** Sends what is queued now without waiting for the linger. */
  flush(): void;
  /** Items queued and not yet handed to `run`. */
  readonly queued: number;
}

/** Creates a batcher (one per queue and operation). */
export function createBatcher<T>(options: BatcherOptions<T>): Batcher<T> {
  const maxEntries = Math.max(1, Math.floor(options.maxEntries));
  const maxBytes = options.maxBytes ?? Infinity;
  let items: T[] = [];
  let bytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let immediate: ReturnType<typeof setImmediate> | undefined;

  function flush(): void {
    if (timer !== undefined) clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
    timer = immediate = undefined;
    if (items.length === 0) return;
    const batch = items;
    items = [];
    bytes = 0;
    options.run(batch).catch((err: unknown) => options.onRunError(batch, err));
  }

  return {
    add(item) {
      const size = options.sizeOf?.(item) ?? 0;
      if (items.length > 0 && bytes + size > maxBytes) flush();
      items.push(item);
      bytes += size;
      if (items.length >= maxEntries) return flush();
      if (timer !== undefined || immediate !== undefined) return;
      if (options.lingerMs > 0) timer = setTimeout(flush, options.lingerMs);
      else immediate = setImmediate(flush);
    },
    flush,
    get queued() {
      return items.length;
    },
  };
}
