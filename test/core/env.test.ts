import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, envVar, parseEnv } from '../../services/core/config/env.ts';

const schema = z.object({
  PORT: envVar.int(8080, 1, 65535),
  TOKEN: z.string({ error: 'required' }).min(1),
  DEBUG: envVar.bool(false),
});

describe('parseEnv', () => {
  it('returns a frozen typed object with defaults', () => {
    const cfg = parseEnv(schema, { TOKEN: 't' });
    expect(cfg).toEqual({ PORT: 8080, TOKEN: 't', DEBUG: false });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('names the variable and what was expected', () => {
    expect(() => parseEnv(schema, { TOKEN: 't', PORT: '99999' })).toThrow(/^PORT: expected an integer from 1 to 65535, got "99999"$/);
    expect(() => parseEnv(schema, {})).toThrow(ConfigError);
    expect(() => parseEnv(schema, {})).toThrow(/^TOKEN: /);
  });

  it('regression: a path variable ending in _FILE is not read as a secret', () => {
    const pathSchema = z.object({ AUDIT_FILE: z.string() });
    expect(parseEnv(pathSchema, { AUDIT_FILE: '/nonexistent/audit.jsonl' }, ['TOKEN']).AUDIT_FILE).toBe('/nonexistent/audit.jsonl');
  });

  it('reads NAME_FILE secrets and refuses both forms at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-env-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'from-file\n');
    expect(parseEnv(schema, { TOKEN_FILE: file }, ['TOKEN']).TOKEN).toBe('from-file');
    expect(() => parseEnv(schema, { TOKEN: 'x', TOKEN_FILE: file }, ['TOKEN'])).toThrow(/TOKEN and TOKEN_FILE are both set/);
    expect(() => parseEnv(schema, { TOKEN_FILE: join(dir, 'missing') }, ['TOKEN'])).toThrow(/TOKEN_FILE: cannot read secret file \(ENOENT\)/);
  });
});
