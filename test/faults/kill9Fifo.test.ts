// Scenario 1 on FIFO queues whatever TEST_QUEUE_FIFO says, so CI (`npm run test:faults`) covers
// both queue types: kill -9 of either service while chart updates of 32 records travel in their
// ordered groups; each record's updates must reach the EMR in the order accepted.
import { scaled } from './harness.ts';
import { kill9Scenario } from './kill9Scenario.ts';

kill9Scenario({ total: scaled(600, 20), fifo: true });
