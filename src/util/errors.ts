/**
 * An error caused by the user's input or environment (bad YAML, missing file, unknown id).
 * The CLI prints only its one-line message; anything else is a bug and gets a stack trace
 * under --debug.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
