// A mistake in the machine's setup that its operator can fix (a port taken, a key that does not
// match its certificate): the CLI prints it as one line with the fix and no stack trace, however
// deep in the start it was found (supervisors keep it as the `cause` of what they throw).
export class OperatorError extends Error {
  override name = 'OperatorError';
  constructor(message: string, readonly fix?: string) { super(message); }
}

/** The innermost cause of an error (supervisors wrap what their children threw). */
export function rootCause(e: unknown): unknown {
  let at = e;
  for (let i = 0; i < 20 && at instanceof Error && at.cause !== undefined; i++) at = at.cause;
  return at;
}
