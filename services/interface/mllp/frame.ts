// MLLP (HL7 v2 Minimal Lower Layer Protocol, HL7 v2.5.1 Appendix C / "Transport
// Specification: MLLP, Release 2"): a message travels as <VT> message <FS><CR>. The
// framing is three bytes; what matters here is that it is bounded, which the HL7
// libraries evaluated (docs/configuration.md, "HL7 v2 over MLLP") do not do.

/** Start block (VT, 0x0B). */
export const START_BLOCK = 0x0b;
/** End block (FS, 0x1C), followed by a carriage return. */
export const END_BLOCK = 0x1c;
/** Carriage return (0x0D): ends the frame after FS, and separates HL7 segments. */
export const CARRIAGE_RETURN = 0x0d;

/** Wraps one message in an MLLP frame. */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(message.length + 3);
  out[0] = START_BLOCK;
  message.copy(out, 1);
  out[message.length + 1] = END_BLOCK;
  out[message.length + 2] = CARRIAGE_RETURN;
  return out;
}

/** What the decoder found: a whole message, or a framing violation (the connection should close). */
export type FrameEvent =
  | { kind: 'message'; payload: Buffer }
  | { kind: 'error'; code: 'CR_MLLP_FRAME_INVALID' | 'CR_MLLP_FRAME_TOO_LARGE' };

/**
 * A bounded, incremental MLLP frame decoder. Bytes between frames other than CR/LF
 * (some engines send a trailing newline) are a framing error; a frame larger than
 * `maxBytes` is an error as soon as it exceeds it, so memory stays bounded.
 */
export class FrameDecoder {
  readonly #maxBytes: number;
  #parts: Buffer[] = [];
  #size = 0;
  #inFrame = false;
  /** The frame's FS has arrived; its CR has not (it may come in the next chunk). */
  #ended = false;
  #failed = false;

  /** @param maxBytes largest message (without the framing bytes) accepted */
  constructor(maxBytes: number) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes: expected a positive integer, got ${maxBytes}`);
    this.#maxBytes = maxBytes;
  }

  /** True while a frame has started and not yet ended with FS CR (a slow sender is mid-message). */
  get inFrame(): boolean {
    return this.#inFrame;
  }

  /**
   * Feeds received bytes; returns the messages completed by them, then an error if one was
   * found (after which the decoder stays failed). The outcome does not depend on where the
   * chunks are cut: a message counts only once the CR after its FS has arrived.
   */
  push(chunk: Buffer): FrameEvent[] {
    if (this.#failed) return [];
    const events: FrameEvent[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (!this.#inFrame) {
        const byte = chunk[i]!;
        if (byte === START_BLOCK) {
          this.#inFrame = true;
          this.#parts = [];
          this.#size = 0;
        } else if (byte !== CARRIAGE_RETURN && byte !== 0x0a) {
          return this.#fail(events, 'CR_MLLP_FRAME_INVALID');
        }
        i += 1;
        continue;
      }
      if (this.#ended) {
        // FS must be followed by CR, in this chunk or the next.
        if (chunk[i] !== CARRIAGE_RETURN) return this.#fail(events, 'CR_MLLP_FRAME_INVALID');
        const payload = Buffer.concat(this.#parts, this.#size);
        this.#parts = [];
        this.#size = 0;
        this.#inFrame = false;
        this.#ended = false;
        if (payload.includes(START_BLOCK)) return this.#fail(events, 'CR_MLLP_FRAME_INVALID');
        events.push({ kind: 'message', payload });
        i += 1;
        continue;
      }
      const end = chunk.indexOf(END_BLOCK, i);
      const stop = end === -1 ? chunk.length : end;
      if (this.#size + (stop - i) > this.#maxBytes) return this.#fail(events, 'CR_MLLP_FRAME_TOO_LARGE');
      if (stop > i) {
        this.#parts.push(chunk.subarray(i, stop));
        this.#size += stop - i;
      }
      if (end === -1) break;
      this.#ended = true;
      i = end + 1;
    }
    return events;
  }

  #fail(events: FrameEvent[], code: 'CR_MLLP_FRAME_INVALID' | 'CR_MLLP_FRAME_TOO_LARGE'): FrameEvent[] {
    this.#failed = true;
    this.#ended = false;
    this.#parts = [];
    this.#size = 0;
    events.push({ kind: 'error', code });
    return events;
  }
}
