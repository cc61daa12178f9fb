import type { Logger } from 'pino';
import { handleSignals } from './runtime.ts';

/** What a service process runs: started, it can be reloaded (SIGHUP) and stopped (SIGTERM). */
export interface RunningService {
  /** The service's logger. */
  runtime: { logger: Logger };
  /** Re-reads every token file or none; throws when a file is invalid (nothing changes; logged and audited). */
  reload(): void;
  /** Graceful stop. */
  stop(): Promise<void>;
}

/**
 * The body of a service's process entry: starts it, wires SIGTERM/SIGINT to a graceful
 * stop and SIGHUP to a token reload, and turns a start failure into one line on stderr
 * naming what is wrong (a config variable, a key file, a queue) and exit code 1.
 */
export async function runServiceProcess(name: string, start: () => Promise<RunningService>): Promise<void> {
  try {
    const service = await start();
    const log = service.runtime.logger;
    // Started by `care-relay dev` (an IPC channel): when that process is gone, the stack is gone
    // with it (its emulator and sink run inside it), so exit at once, as a crash would: nothing
    // is lost, SQS returns what was in flight. Without this, a kill -9 of `npm start` left the
    // services running in their own process groups.
    if (process.connected) {
      process.once('disconnect', () => {
        log.error('the dev stack that started this service is gone: exiting');
        process.exit(1);
      });
    }
    handleSignals(
      log,
      () => service.stop(),
      () => {
        try {
          service.reload();
        } catch {
          // Already logged and audited by the reload, naming the file; the process keeps serving.
        }
      },
    );
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
