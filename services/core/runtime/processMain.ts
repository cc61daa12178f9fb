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
