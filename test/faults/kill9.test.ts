// Scenario 1: kill -9 of either service under load, on the queues TEST_QUEUE_FIFO selects
// (standard by default); the scenario and how it counts are in kill9Scenario.ts. The fleet
// scenario (fleet.test.ts) carries the volume; this one the kills of a single pair.
import { scaled } from './harness.ts';
import { kill9Scenario } from './kill9Scenario.ts';

kill9Scenario({ total: scaled(1_000, 20) });
