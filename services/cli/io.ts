// Where a command reads its environment and writes its output; the runner passes the process's,
// tests their own.

/** The terminal and environment of one command run. */
export interface CliIo {
  /** Environment variables (read by config.ts only). */
  env: Readonly<Record<string, string | undefined>>;
  /** Writes to standard output (text as given; add the newline). */
  stdout(text: string): void;
  /** Writes to standard error (text as given; add the newline). */
  stderr(text: string): void;
  /** True when standard error is a terminal (progress bars are drawn there). */
  stderrIsTTY: boolean;
  /** True when standard input is a terminal (a confirmation can be asked). */
  stdinIsTTY: boolean;
  /** Asks a question on the terminal and resolves with the answer. */
  ask(question: string): Promise<string>;
  /** Terminal width for the progress bar. */
  columns: number;
}

/** The io of the running process. */
export function processIo(): CliIo {
  return {
    env: process.env,
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    stderrIsTTY: process.stderr.isTTY === true,
    stdinIsTTY: process.stdin.isTTY === true,
    columns: process.stderr.columns || 80,
    async ask(question) {
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
  };
}
