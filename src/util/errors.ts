/**
 * An error caused by the user's input or environment (bad YAML, missing file, unknown id).
 * The CLI prints only its one-line message; anything else is a bug and gets a stack trace
 * under --debug.
 */
export class UserError extends Error {
  /** The process exit code this error stands for (130 for an interrupted run, say). */
  readonly exitCode: number;

  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'UserError';
    this.exitCode = options?.exitCode ?? 1;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
