import { describe, expect, it } from 'vitest';
import { ephemeralRange, freePort, portBlock } from './processes.ts';

describe('ports for child processes', () => {
  it('reads the ephemeral range, and assumes the Linux default where it cannot', () => {
    expect(ephemeralRange(() => '32768\t60999\n')).toEqual([32_768, 60_999]);
    expect(ephemeralRange(() => '15000 64000')).toEqual([15_000, 64_000]);
    expect(ephemeralRange(() => { throw new Error('ENOENT'); })).toEqual([32_768, 60_999]);
    expect(ephemeralRange(() => 'garbage')).toEqual([32_768, 60_999]);
  });

  it('puts each worker block outside the ephemeral range, the eight blocks apart', () => {
    for (const range of [[32_768, 60_999], [15_000, 64_000], [40_000, 65_535], [10_000, 50_000], [49_152, 65_535], [1_024, 5_000]] as [number, number][]) {
      const blocks = Array.from({ length: 8 }, (_, slot) => portBlock(range, slot));
      for (const [i, b] of blocks.entries()) {
        const last = b.first + b.size - 1;
        expect(b.size).toBeGreaterThanOrEqual(16);
        expect(last < range[0] || b.first > range[1]).toBe(true);
        expect(b.first).toBeGreaterThanOrEqual(10_000);
        expect(last).toBeLessThanOrEqual(65_535);
        if (i > 0) expect(b.first).toBe(blocks[i - 1]!.first + blocks[i - 1]!.size);
      }
    }
    // The default range: the blocks end next to it, as before (20768–32767).
    expect(portBlock([32_768, 60_999], 0)).toEqual({ first: 20_768, size: 1_500 });
  });

  it('says so when the range leaves too few ports outside it', () => {
    expect(() => portBlock([1_024, 65_535], 0)).toThrow(/too few ports/);
  });

  it('hands out a port outside the ephemeral range of this machine', async () => {
    const [first, last] = ephemeralRange();
    const port = await freePort();
    expect(port < first || port > last).toBe(true);
  });
});
