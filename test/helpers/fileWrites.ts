// Counts the writes made through Node's `FileHandle` (the audit trail writes through one).
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { vi } from 'vitest';

/** Spies on `FileHandle.prototype.write` for every file handle of the process (a probe file is made in `dir` to reach it); call `mockRestore()` when done. */
export async function spyOnFileHandleWrites(dir: string) {
  const probe = await open(join(dir, 'probe'), 'w');
  const fileHandle = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<unknown> };
  await probe.close();
  return vi.spyOn(fileHandle, 'write');
}
