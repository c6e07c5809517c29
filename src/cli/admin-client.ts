// Client side of the admin socket (server: src/runtime/admin.ts). Newline-delimited JSON:
//   → { "id": n, "cmd": "...", "args": { ... } }
//   ← { "id": n, "ok": true, "result": ... } | { "id": n, "ok": false, "error": "..." }
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { CliError } from './errors.ts';
import { runningNodes } from './processes.ts';

export const ADMIN_COMMANDS = ['adduser', 'passwd', 'deluser', 'users', 'import-users', 'invite', 'status', 'actors', 'kill', 'reload'] as const;
export type AdminCommand = (typeof ADMIN_COMMANDS)[number];

export interface AdminRequest { id: number; cmd: AdminCommand | string; args: Record<string, unknown> }
export type AdminResponse =
  | { id: number | null; ok: true; result: unknown }
  | { id: number | null; ok: false; error: string };

/** The node answered with ok:false; the message names the problem. */
export class AdminError extends CliError {
  override readonly name = 'AdminError';
}

export class AdminClient {
  #sock: Socket;
  #next = 1;
  #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout | undefined }>();
  #closed: Error | null = null;

  private constructor(sock: Socket) {
    this.#sock = sock;
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.#answer(line);
      }
    });
    const gone = (why: string) => () => this.#fail(new CliError(`the node closed the admin connection (${why})`));
    sock.on('error', (e) => this.#fail(new CliError(`admin socket: ${e.message}`)));
    sock.on('close', gone('closed'));
  }

  /**
   * Connect to a running node. null when nothing listens there (no socket file, or a stale one left
   * by a node that died), which callers take as "the node is not running".
   */
  static connect(path: string, timeoutMs = 3000): Promise<AdminClient | null> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new CliError(`the node's admin socket ${path} accepts no connection within ${timeoutMs / 1000} s; is the node hung?`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new AdminClient(sock));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK' || e.code === 'ENOTDIR') resolve(null);
        else if (e.code === 'EACCES') {
          reject(new CliError(runningNodes().length
            ? `cannot use the admin socket ${path}: permission denied; run chorus as the user the node runs as`
            : `cannot use the admin socket ${path}: permission denied, and no node is running: its data_dir belongs to another user; ` +
              `run chorus as that user (ls -ld ${dirname(path)}), or make it this user's: sudo chown -R $(id -un) ${dirname(path)}`));
        }
        else reject(new CliError(`cannot connect to the admin socket ${path}: ${e.message}`));
      });
    });
  }

  /** Send one request; resolves with `result`, rejects with AdminError carrying the node's message. */
  request(cmd: AdminCommand | string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = timeoutMs > 0
        ? setTimeout(() => {
          this.#pending.delete(id);
          reject(new CliError(`the node did not answer "${cmd}" within ${timeoutMs / 1000} s`));
        }, timeoutMs)
        : undefined;
      this.#pending.set(id, { resolve, reject, timer });
      this.#sock.write(JSON.stringify({ id, cmd, args } satisfies AdminRequest) + '\n');
    });
  }

  close(): void {
    this.#closed ??= new CliError('admin connection closed');
    this.#sock.end();
    this.#sock.destroy();
  }

  #answer(line: string): void {
    let res: AdminResponse;
    try {
      res = JSON.parse(line) as AdminResponse;
    } catch {
      this.#fail(new CliError(`the node sent a malformed admin answer: ${line.slice(0, 200)}`));
      return;
    }
    const p = typeof res.id === 'number' ? this.#pending.get(res.id) : undefined;
    if (!p) {
      // id null: the server could not read our request at all; it concerns the oldest one.
      if (res.id === null && !res.ok) this.#fail(new AdminError(res.error));
      return;
    }
    this.#pending.delete(res.id as number);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.result);
    else p.reject(new AdminError(String(res.error)));
  }

  #fail(e: Error): void {
    this.#closed ??= e;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.#pending.delete(id);
    }
  }
}
