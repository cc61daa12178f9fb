import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { loadTokenFile } from '../../core/http/auth.ts';
import { partnerEntrySchema } from '../intake/partners.ts';
import { CallbackConfigError } from './reasons.ts';
import { readCallbackSecrets, type CallbackSecrets } from './secrets.ts';
import { callbackUrlProblem } from './target.ts';

/** Where one partner's status callbacks go and what signs them. */
export interface CallbackTarget {
  /** The partner id (the `name` in the partners file). */
  readonly partner: string;
  /** The checked callback URL. */
  readonly url: URL;
  /** Its signing secrets (never printed). */
  readonly secrets: CallbackSecrets;
}

/** The partners' callbacks, read from the partners file; reloaded with it (SIGHUP), all or nothing. */
export interface CallbackTargets {
  /** The partner's callback, or undefined when it has none. */
  get(partner: string): CallbackTarget | undefined;
  /** Partners with a callback. */
  readonly size: number;
  /**
   * Reads the partners file and every secret file it names and checks them now; returns the
   * function that swaps them in. Throws (changing nothing) when any is invalid, or when
   * `allowFirst` is false and the file has callbacks while the service started without any
   * (the callbacks queue is resolved at start only).
   */
  prepare(options?: { allowFirst?: boolean }): () => void;
}

/** Options for {@link createCallbackTargets}. */
export interface CallbackTargetsOptions {
  /** The partners file (PARTNERS_FILE); relative secret files are resolved from its folder. */
  partnersFile: string;
  /** PARTNER_CALLBACK_ALLOW_INSECURE: plain http to a loopback host (local development only). */
  allowInsecure: boolean;
  /** PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS: https to loopback, private, link-local or reserved addresses. */
  allowPrivate?: boolean;
  /** Reads a secret file (tests). */
  read?: (path: string) => string;
}

function loadTargets(options: CallbackTargetsOptions): Map<string, CallbackTarget> {
  const out = new Map<string, CallbackTarget>();
  for (const entry of loadTokenFile(options.partnersFile, partnerEntrySchema)) {
    if (!entry.callback) continue;
    const where = `partners file ${options.partnersFile}: partner "${entry.name}": callback`;
    const problem = callbackUrlProblem(entry.callback.url, { allowInsecure: options.allowInsecure, allowPrivate: options.allowPrivate ?? false });
    if (problem) throw new CallbackConfigError(`${where}.url: ${problem}`);
    const file = isAbsolute(entry.callback.secretFile) ? entry.callback.secretFile : resolve(dirname(options.partnersFile), entry.callback.secretFile);
    let secrets: CallbackSecrets;
    try {
      secrets = readCallbackSecrets(file, options.read ?? ((path) => readFileSync(path, 'utf8')));
    } catch (err) {
      throw new CallbackConfigError(`${where}.secretFile: ${(err as Error).message}`, err);
    }
    out.set(entry.name, Object.freeze({ partner: entry.name, url: new URL(entry.callback.url), secrets }));
  }
  return out;
}

/** Loads the partners' callbacks at start (throws CallbackConfigError, or TokenFileError for the partners file itself). */
export function createCallbackTargets(options: CallbackTargetsOptions): CallbackTargets {
  let targets = loadTargets(options);
  const startedWithAny = targets.size > 0;
  return {
    get: (partner) => targets.get(partner),
    get size() {
      return targets.size;
    },
    prepare(prepareOptions = {}) {
      const next = loadTargets(options);
      if (!startedWithAny && next.size > 0 && !(prepareOptions.allowFirst ?? false)) {
        throw new CallbackConfigError(`partners file ${options.partnersFile}: the service started without partner callbacks; restart it to add the first one`);
      }
      return () => {
        targets = next;
      };
    },
  };
}
