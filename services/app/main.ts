// Process entry of the app service: `node services/app/main.ts`.
import { handleSignals } from '../core/runtime/runtime.ts';
import { loadAppConfig } from './config.ts';
import { startAppService } from './service.ts';

try {
  const service = await startAppService(loadAppConfig());
  const log = service.runtime.logger;
  handleSignals(log, () => service.stop(), () => {
    try {
      service.reload();
    } catch (err) {
      log.error({ code: (err as { code?: string }).code }, 'token reload failed; keeping the previous tokens');
    }
  });
} catch (err) {
  // One clear line naming what is wrong (a config variable, a key file, a queue); no stack.
  process.stderr.write(`app: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
