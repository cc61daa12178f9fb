// Process entry of the app service: `node services/app/main.ts`.
import { runServiceProcess } from '../core/runtime/processMain.ts';
import { loadAppConfig } from './config.ts';
import { startAppService } from './service.ts';

await runServiceProcess('app', () => startAppService(loadAppConfig()));
