// Process entry of the demo EMR sink (docker-compose, `npm start`). PORT and HOST
// come from the environment; it prints one metadata line per delivery, never a payload.
import { startEmrSink } from './emrSink.ts';
import { startMllpSink } from './mllpSink.ts';

// eslint-disable-next-line no-restricted-properties -- a dev tool's entry point, not service code
const env = process.env;
const sink = await startEmrSink({
  port: Number(env.PORT ?? 8090),
  host: env.HOST ?? '127.0.0.1',
  onDelivery: (d) => process.stdout.write(`${JSON.stringify({ msg: 'emr delivery', envelopeId: d.envelopeId, contentType: d.contentType, bytes: d.bytes })}\n`),
});
process.stdout.write(`${JSON.stringify({ msg: 'emr sink listening', url: sink.url })}\n`);
// MLLP_PORT: the sink also takes HL7 v2 over MLLP (plain TCP; ACK AA).
const mllp = env.MLLP_PORT
  ? await startMllpSink({
      port: Number(env.MLLP_PORT),
      host: env.HOST ?? '127.0.0.1',
      onDelivery: (d) => process.stdout.write(`${JSON.stringify({ msg: 'emr mllp delivery', bytes: d.bytes })}\n`),
    })
  : undefined;
if (mllp) process.stdout.write(`${JSON.stringify({ msg: 'emr sink mllp listening', port: mllp.port })}\n`);
const stop = (): void => {
  void Promise.all([sink.stop(), mllp?.stop()]).then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
