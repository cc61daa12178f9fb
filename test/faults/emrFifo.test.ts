// Scenario 3 on FIFO queues whatever TEST_QUEUE_FIFO says, so CI (`npm run test:faults`) covers
// both queue types: chart updates of different records are retried side by side in their own
// ordered groups, and delivered once each through an EMR down, slow and flapping.
import { emrScenario } from './emrScenario.ts';

emrScenario({ fifo: true });
