import { describe, expect, it } from 'vitest';
import { loadAppConfig } from '../../services/app/config.ts';
import { ConfigError } from '../../services/core/config/env.ts';

const base = {
  KEYS_DIR: 'keys/app',
  KEY_PASSPHRASE: 'unused-in-this-test',
  APP_TOKENS_FILE: 'tokens.json',
  AUDIT_FILE: 'audit.jsonl',
  HMAC_KEY: 'k'.repeat(32),
  SIGNALWIRE_PROJECT_ID: 'project',
  SIGNALWIRE_API_TOKEN: 'token',
  SIGNALWIRE_SPACE_URL: 'https://example.signalwire.com',
  SIGNALWIRE_SIGNING_KEY: 'signing-key',
  SIGNALWIRE_FROM_NUMBER: '+15551230000',
};

describe('app configuration: PUBLIC_BASE_URL', () => {
  it('refuses a non-loopback http PUBLIC_BASE_URL: SignalWire would post bodies, numbers and the webhook password in clear', () => {
    for (const url of ['http://relay.example.org', 'http://10.0.0.5:8081', 'http://127.0.0.1.example.org', 'http://localhost.example.org/']) {
      const load = () => loadAppConfig({ ...base, PUBLIC_BASE_URL: url });
      expect(load, url).toThrow(ConfigError);
      expect(load, url).toThrow(/^PUBLIC_BASE_URL: expected an https URL \(http only on a loopback host\)/);
    }
    // Without SMS too: the same URL is what clients and the OpenAPI document use.
    expect(() => loadAppConfig({ ...base, SIGNALWIRE_PROJECT_ID: undefined, PUBLIC_BASE_URL: 'http://relay.example.org' } as never)).toThrow(/^PUBLIC_BASE_URL: /);
  });

  it('accepts https anywhere, and http on a loopback host', () => {
    for (const url of ['https://relay.example.org', 'http://127.0.0.1:8081', 'http://localhost:8081/', 'http://[::1]:8081', 'http://127.1.2.3']) {
      expect(loadAppConfig({ ...base, PUBLIC_BASE_URL: url }).PUBLIC_BASE_URL, url).toBe(url);
    }
  });
});
