// Process entry of the demo EMR sink (docker-compose, `npm start`). PORT and HOST
// come from the environment; it prints one metadata line per delivery, never a payload.
import { startEmrSink } from './emrSink.ts';

// eslint-disable-next-line no-restricted-properties -- a dev tool's entry point, not service code
const env = process.env;
const sink = await startEmrSink({
  port: Number(env.PORT ?? 8090),
  host: env.HOST ?? '127.0.0.1',
  onDelivery: (d) => process.stdout.write(`${JSON.stringify({ msg: 'emr delivery', envelopeId: d.envelopeId, contentType: d.contentType, bytes: d.bytes })}\n`),
});
process.stdout.write(`${JSON.stringify({ msg: 'emr sink listening', url: sink.url })}\n`);
const stop = (): void => {
  void sink.stop().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
