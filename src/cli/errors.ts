// User-facing CLI failures: main() prints the message as one line and exits 1, with no stack trace.

export class CliError extends Error {
  override name = 'CliError';
}
