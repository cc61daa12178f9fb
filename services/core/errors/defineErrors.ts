/** What an area declares about one of its error codes. */
export interface ErrorSpec {
  /** HTTP status when the error may be shown to a client; absent for internal errors. */
  readonly status?: number;
  /** Problem `title`: a short, fixed summary of the problem type. */
  readonly title: string;
  /** One line on when it happens (docs/errors.md says the same, in more words). */
  readonly description: string;
}

/** One catalogued error: its spec plus its own code. */
export type ErrorDefinition<C extends string = string> = ErrorSpec & { readonly code: C };

/** An area's catalogue: each code mapped to its definition. */
export type ErrorCatalogue<C extends string = string> = { readonly [K in C]: ErrorDefinition<K> };

/** The code union of a catalogue, e.g. `ErrorCode<typeof TRANSPORT_ERRORS>` (so `switch (err.code)` narrows). */
export type ErrorCode<T> = keyof T & string;

/**
 * Declares an area's error codes once (like fastify's `lib/errors.js`): each `CR_*` code with
 * its HTTP status and title. Returns the frozen catalogue, each entry carrying its own `code`;
 * derive the area's code union with {@link ErrorCode}.
 */
export function defineErrors<const T extends Record<`CR_${string}`, ErrorSpec>>(spec: T): { readonly [K in keyof T & string]: T[K] & { readonly code: K } } {
  const out: Record<string, ErrorDefinition> = {};
  for (const [code, entry] of Object.entries(spec) as [string, ErrorSpec][]) out[code] = Object.freeze({ ...entry, code });
  return Object.freeze(out) as unknown as { readonly [K in keyof T & string]: T[K] & { readonly code: K } };
}
