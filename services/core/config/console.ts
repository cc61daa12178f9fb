import type { z } from 'zod';
import { envVar } from './env.ts';

/** Operator console variables both services read (each through its own config.ts). */
export const consoleEnvShape = {
  /** Serve the operator console at /console (admins sign in with their admin token). */
  CONSOLE_ENABLED: envVar.bool(true),
  /** Seconds without a request before a console session is signed out (HIPAA automatic logoff). */
  CONSOLE_IDLE_TIMEOUT_SECONDS: envVar.int(300, 2, 3600),
  /** Longest a console session lives, however active, in seconds. */
  CONSOLE_SESSION_MAX_SECONDS: envVar.int(3600, 60, 86_400),
  /** Seconds between the console's queue-depth samples (the overview chart covers the last hour). */
  CONSOLE_SAMPLE_SECONDS: envVar.int(30, 1, 600),
};

/** The console fields of a validated service configuration. */
export type ConsoleConfig = z.infer<z.ZodObject<typeof consoleEnvShape>>;
