/** One injected failure, applied to the next matching requests. */
export interface FaultSpec {
  /** How many matching requests fail. */
  count: number;
  /** HTTP status to answer (429, 500, 502, 503, ...). */
  status: number;
  /** `Retry-After` header value in seconds, when set. */
  retryAfter?: number;
  /** Answer an HTML page instead of the JSON error (the SDK then throws a SyntaxError). */
  nonJson?: boolean;
  /** Only requests with this method. */
  method?: string;
  /** Only requests whose path (without the `/api/laml` prefix) matches. */
  path?: RegExp;
}

/** Which requests a hold stalls. */
export interface HoldSpec {
  /** Only requests with this method. */
  method?: string;
  /** Only requests whose path (without the `/api/laml` prefix) matches. */
  path?: RegExp;
}

/** Queue of injected failures: 429 with Retry-After, 5xx bursts, non-JSON error bodies; and holds (a slow API). */
export class Faults {
  private readonly specs: FaultSpec[] = [];
  private readonly holds = new Set<HoldSpec & { released: Promise<void> }>();

  /** Makes the next `spec.count` matching requests fail as described. */
  inject(spec: FaultSpec): void {
    this.specs.push({ ...spec });
  }

  /** Removes every pending fault. */
  clear(): void {
    this.specs.length = 0;
  }

  /**
   * Stalls every matching request (as a slow API does) until the returned function is called;
   * the stalled requests are then answered as usual. Requests the client gives up on are dropped.
   */
  hold(spec: HoldSpec): () => void {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const entry = { ...spec, released };
    this.holds.add(entry);
    return () => {
      this.holds.delete(entry);
      release();
    };
  }

  /** Waits while a hold applies to this request. */
  async passHolds(method: string, path: string): Promise<void> {
    for (;;) {
      const hold = [...this.holds].find((h) => (!h.method || h.method === method) && (!h.path || h.path.test(path)));
      if (!hold) return;
      await hold.released;
    }
  }

  /** Failures still to be served. */
  get remaining(): number {
    return this.specs.reduce((n, s) => n + s.count, 0);
  }

  /** Takes the fault that applies to this request, if any. */
  take(method: string, path: string): FaultSpec | undefined {
    const spec = this.specs.find((s) => s.count > 0 && (!s.method || s.method === method) && (!s.path || s.path.test(path)));
    if (!spec) return undefined;
    spec.count--;
    if (spec.count === 0) this.specs.splice(this.specs.indexOf(spec), 1);
    return spec;
  }
}
