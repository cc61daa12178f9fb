import type { RunningProcess } from './processes.ts';
import { waitFor } from './wait.ts';

/** Waits until `care-relay dev` has printed its ready text; fails at once, with its output, if it exits first. */
export async function waitDevReady(dev: RunningProcess, timeoutMs: number, what = 'care-relay dev to be ready'): Promise<void> {
  await waitFor(() => dev.lines.some((l) => l.includes('Ctrl-C stops everything')) || (dev.child.exitCode !== null && Promise.reject(new Error(dev.lines.join('\n')))), {
    timeoutMs,
    what,
  });
}
