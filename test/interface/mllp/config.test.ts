import { describe, expect, it } from 'vitest';
import { checkMllp, mllpAddress } from '../../../services/interface/mllp/config.ts';
import { interfaceEnvSchema } from '../../../services/interface/config.ts';

const base = { HOST: '127.0.0.1' };
const parse = (env: Record<string, string>) => interfaceEnvSchema.pick({
  EMR_MLLP_URL: true, EMR_MLLP_PLAIN: true, EMR_MLLP_CA_FILE: true, EMR_MLLP_CERT_FILE: true, EMR_MLLP_KEY_FILE: true, EMR_MLLP_SERVERNAME: true,
  EMR_MLLP_ACK_TIMEOUT_MS: true, EMR_MLLP_MAX_ATTEMPTS: true, EMR_MLLP_CONNECTIONS: true, MLLP_INTAKE_PORT: true, MLLP_INTAKE_HOST: true, MLLP_INTAKE_PLAIN: true,
  MLLP_INTAKE_CLIENT_CA_FILE: true, MLLP_INTAKE_MAX_FRAME_BYTES: true, MLLP_INTAKE_FRAME_TIMEOUT_MS: true, MLLP_INTAKE_IDLE_TIMEOUT_MS: true, MLLP_INTAKE_MAX_CONNECTIONS: true, MLLP_INTAKE_MAX_CONNECTIONS_PER_ADDRESS: true,
}).parse(env);

describe('MLLP configuration', () => {
  it('plain TCP to the EMR only when the operator says so', () => {
    expect(checkMllp({ ...base, ...parse({ EMR_MLLP_URL: 'mllp://emr.example:2575' }) })).toMatch(/^EMR_MLLP_URL: .*EMR_MLLP_PLAIN=true/);
    expect(checkMllp({ ...base, ...parse({ EMR_MLLP_URL: 'mllp://emr.example:2575', EMR_MLLP_PLAIN: 'true' }) })).toBeUndefined();
  });

  it('TLS to the EMR needs the pinned CA; a client certificate comes with its key', () => {
    expect(checkMllp({ ...base, ...parse({ EMR_MLLP_URL: 'mllps://emr.example:2575' }) })).toMatch(/^EMR_MLLP_CA_FILE: /);
    expect(checkMllp({ ...base, ...parse({ EMR_MLLP_URL: 'mllps://emr.example:2575', EMR_MLLP_CA_FILE: 'ca.pem', EMR_MLLP_CERT_FILE: 'c.pem' }) })).toMatch(/^EMR_MLLP_CERT_FILE: /);
    expect(checkMllp({ ...base, ...parse({ EMR_MLLP_URL: 'mllps://emr.example:2575', EMR_MLLP_CA_FILE: 'ca.pem' }) })).toBeUndefined();
  });

  it('refuses a destination that is not mllp(s)://host:port', () => {
    expect(() => parse({ EMR_MLLP_URL: 'https://emr.example/x' })).toThrow(/mllps:\/\/host:port/);
    expect(mllpAddress('mllps://[::1]:2575')).toEqual({ host: '::1', port: 2575, tls: true });
  });

  it('the intake listener needs TLS outside loopback unless plain TCP is explicitly allowed', () => {
    expect(checkMllp({ ...base, ...parse({ MLLP_INTAKE_PORT: '2575' }) })).toBeUndefined();
    expect(checkMllp({ ...base, ...parse({ MLLP_INTAKE_PORT: '2575', MLLP_INTAKE_HOST: '0.0.0.0' }) })).toMatch(/^MLLP_INTAKE_PLAIN: /);
    expect(checkMllp({ ...base, TLS_CERT_FILE: 'c.pem', ...parse({ MLLP_INTAKE_PORT: '2575', MLLP_INTAKE_HOST: '0.0.0.0' }) })).toBeUndefined();
    expect(checkMllp({ ...base, ...parse({ MLLP_INTAKE_PORT: '2575', MLLP_INTAKE_HOST: '10.0.0.5', MLLP_INTAKE_PLAIN: 'true' }) })).toBeUndefined();
  });
});
