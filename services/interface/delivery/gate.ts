import type { EnvelopeEffects } from '../../core/relay/inbound.ts';

/** Runs work with at most `size` pieces at once; the others wait, first come first served. */
export type Gate = <T>(work: () => Promise<T>) => Promise<T>;

/** Creates a gate of `size` places (EMR deliveries at once, whatever else the consumer holds). */
export function createGate(size: number): Gate {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (work) => {
    if (running >= size) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await work();
    } finally {
      // The place passes straight to the next in line, or is given back.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/**
 * The effects with the one of `kind` gated: at most `size` at once (a large chart update's
 * object check included). One still waiting at shutdown is handed back to SQS, not started.
 */
export function gateKind(kind: string, size: number, effects: EnvelopeEffects): EnvelopeEffects {
  const effect = effects[kind];
  if (!effect) return effects;
  const gate = createGate(size);
  return { ...effects, [kind]: (envelope, message, signal) => gate(async () => (signal.aborted ? { status: 'release' } : effect(envelope, message, signal))) };
}
