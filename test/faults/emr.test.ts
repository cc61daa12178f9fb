// Scenario 3 on the queue type the suite runs on (standard unless TEST_QUEUE_FIFO=true).
import { emrScenario } from './emrScenario.ts';

emrScenario();
