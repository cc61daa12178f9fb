// The SQS emulator (fauxqs) and the state store (dynalite) in a process of their own, for
// `npm run bench -- --emulators=child`: prints one JSON line with what a service needs to reach them
// (`serviceEnv`) and runs until SIGTERM. The bench process then only drives the HTTP clients and times.
import { startEmbeddedDynamo } from '../services/devtools/embeddedDynamo.ts';
import { startSqsEmulator } from '../services/devtools/sqsEmulator.ts';

const server = await startSqsEmulator();
const store = await startEmbeddedDynamo();
process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint, region: server.region, credentials: server.credentials, serviceEnv: { ...server.serviceEnv(), DYNAMODB_ENDPOINT: store.endpoint }, dynamodbEndpoint: store.endpoint })}\n`);
process.once('SIGTERM', () => {
  void Promise.all([server.stop(), store.stop()]).finally(() => process.exit(0));
});
