// Process entry of the interface service: `node services/interface/main.ts`.
import { handleSignals } from '../core/runtime/runtime.ts';
import { loadInterfaceConfig } from './config.ts';
import { startInterfaceService } from './service.ts';

try {
  const service = await startInterfaceService(loadInterfaceConfig());
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
  process.stderr.write(`interface: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
