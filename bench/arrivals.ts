/** When each envelope id became visible, matched with whoever waits for it (either may come first). */
export interface ArrivalBoard {
  /** Records that `id` became visible at `at` (ms), waking its waiter if there is one. */
  arrived(id: string, at: number): void;
  /** Resolves with the time `id` became visible (at once if it already did). */
  arrival(id: string): Promise<number>;
  /** Drops what is kept for `id` (a submission given up). */
  forget(id: string): void;
}

/** Creates an empty {@link ArrivalBoard}. */
export function arrivalBoard(): ArrivalBoard {
  const arrived = new Map<string, number>();
  const waiting = new Map<string, (t: number) => void>();
  return {
    arrived(id, at) {
      const w = waiting.get(id);
      if (w) {
        waiting.delete(id);
        w(at);
      } else arrived.set(id, at);
    },
    arrival(id) {
      const t = arrived.get(id);
      if (t !== undefined) {
        arrived.delete(id);
        return Promise.resolve(t);
      }
      return new Promise((resolve) => waiting.set(id, resolve));
    },
    forget(id) {
      waiting.delete(id);
      arrived.delete(id);
    },
  };
}
