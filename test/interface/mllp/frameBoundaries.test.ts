// The MLLP frame decoder's verdict must not depend on where the bytes were cut: FS is
// followed by CR whether they arrive in one chunk or two.
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../../../services/interface/mllp/frame.ts';

const VT = '\x0b';
const FS = '\x1c';
const CR = '\r';

function decode(chunks: string[]): string[] {
  const decoder = new FrameDecoder(100);
  return chunks.flatMap((c) => decoder.push(Buffer.from(c, 'latin1'))).map((e) => (e.kind === 'message' ? e.payload.toString('latin1') : `!${e.code}`));
}

describe('MLLP frame boundaries', () => {
  it('FS not followed by CR is a framing error whether or not a chunk ends after the FS', () => {
    const wire = `${VT}A${FS}${VT}B${FS}${CR}`;
    const verdicts = Array.from({ length: wire.length - 1 }, (_, cut) => decode([wire.slice(0, cut + 1), wire.slice(cut + 1)]));
    for (const verdict of verdicts) expect(verdict).toEqual(['!CR_MLLP_FRAME_INVALID']);
  });

  it('FS then LF (no CR) is a framing error in one chunk or two', () => {
    expect(decode([`${VT}A${FS}\n`])).toEqual(['!CR_MLLP_FRAME_INVALID']);
    expect(decode([`${VT}A${FS}`, '\n'])).toEqual(['!CR_MLLP_FRAME_INVALID']);
  });

  it('a frame counts once the CR after its FS arrives, and messages before an error are kept', () => {
    const decoder = new FrameDecoder(100);
    expect(decoder.push(Buffer.from(`${VT}A${FS}`, 'latin1'))).toEqual([]);
    expect(decoder.inFrame).toBe(true);
    expect(decoder.push(Buffer.from(`${CR}${VT}B${FS}${CR}x`, 'latin1')).map((e) => (e.kind === 'message' ? e.payload.toString() : e.code))).toEqual(['A', 'B', 'CR_MLLP_FRAME_INVALID']);
  });
});
