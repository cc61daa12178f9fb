/**
 * Tracks how long something has been failing without a single success: EMR delivery
 * attempts report here. A success resets it; the first failure after a success starts it.
 */
export class FailingSince {
  #since: number | undefined;

  /** An attempt succeeded. */
  success(): void {
    this.#since = undefined;
  }

  /** An attempt failed at `now` (epoch ms). */
  failure(now = Date.now()): void {
    this.#since ??= now;
  }

  /** True from the first failure until the next success. */
  get failing(): boolean {
    return this.#since !== undefined;
  }

  /** Seconds since failures began with no success since; 0 when the last attempt succeeded. */
  seconds(now = Date.now()): number {
    return this.#since === undefined ? 0 : Math.max(0, (now - this.#since) / 1000);
  }
}
