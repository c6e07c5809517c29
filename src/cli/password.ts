// Reading a password for adduser/passwd: from a terminal without echo, or the first line of a pipe.
import { CliError } from './errors.ts';

export interface PasswordSource {
  stdin: NodeJS.ReadStream;
  /** Where prompts go (stderr, so stdout stays clean for scripts). */
  prompt: NodeJS.WriteStream;
}

const defaultSource = (): PasswordSource => ({ stdin: process.stdin, prompt: process.stderr });

/** Ask on a terminal (twice when `confirm`), else read one line from stdin. Never returns ''. */
export async function readPassword(label: string, opts: { confirm?: boolean; io?: PasswordSource } = {}): Promise<string> {
  const io = opts.io ?? defaultSource();
  let password: string;
  if (io.stdin.isTTY) {
    password = await askHidden(io, `Password for ${label}: `);
    if (opts.confirm && password !== '' && (await askHidden(io, 'Again: ')) !== password) {
      throw new CliError('the passwords do not match; nothing changed');
    }
  } else {
    password = await firstLine(io.stdin);
  }
  if (password === '') throw new CliError('no password given (empty line or end of input)');
  return password;
}

function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = () => {
      stream.off('data', onData);
      stream.off('end', done);
      stream.off('error', reject);
      stream.pause();
      resolve(buf.split('\n')[0]!.replace(/\r$/, ''));
    };
    const onData = (chunk: Buffer | string) => {
      buf += String(chunk);
      if (buf.includes('\n')) done();
    };
    stream.on('data', onData);
    stream.once('end', done);
    stream.once('error', reject);
  });
}

/** Raw mode: characters are collected without being echoed; backspace edits, Ctrl-C cancels. */
function askHidden(io: PasswordSource, question: string): Promise<string> {
  const tty = io.stdin as NodeJS.ReadStream & { setRawMode(mode: boolean): void };
  return new Promise((resolve, reject) => {
    let value = '';
    io.prompt.write(question);
    tty.setRawMode(true);
    tty.setEncoding('utf8');
    tty.resume();
    const finish = (err?: Error) => {
      tty.setRawMode(false);
      tty.pause();
      tty.off('data', onData);
      io.prompt.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new CliError('cancelled'));
        if (ch === '\u0004') return value === '' ? finish(new CliError('cancelled')) : finish();
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    tty.on('data', onData);
  });
}
