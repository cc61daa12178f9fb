// Process entry of the interface service: `node services/interface/main.ts`.
import { runServiceProcess } from '../core/runtime/processMain.ts';
import { loadInterfaceConfig } from './config.ts';
import { startInterfaceService } from './service.ts';

await runServiceProcess('interface', () => startInterfaceService(loadInterfaceConfig()));
