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

/** Queue of injected failures: 429 with Retry-After, 5xx bursts, non-JSON error bodies. */
export class Faults {
  private readonly specs: FaultSpec[] = [];

  /** Makes the next `spec.count` matching requests fail as described. */
  inject(spec: FaultSpec): void {
    this.specs.push({ ...spec });
  }

  /** Removes every pending fault. */
  clear(): void {
    this.specs.length = 0;
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
