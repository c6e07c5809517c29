// The operator's door into a running node: newline-delimited JSON over a unix socket in the data
// directory, private from creation (startNode sets umask 077; the data directory itself is 0700), so
// only the node's owner can use it.
// Request {id, cmd, args}; answer {id, ok: true, result} or {id, ok: false, error}.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';

export type AdminHandler = (args: Record<string, unknown>) => Promise<unknown>;

const MAX_LINE = 16 * 1024 * 1024; // import-users sends whole files

export class AdminServer {
  private server: Server | null = null;
  /** Open admin connections: closing the node must not wait for a client that stays connected. */
  private readonly socks = new Set<Socket>();
  constructor(readonly path: string, private readonly handlers: Map<string, AdminHandler>) {}

  async listen(): Promise<void> {
    if (existsSync(this.path)) unlinkSync(this.path); // a stale socket of a node that was killed
    const server = createServer((sock) => {
      this.socks.add(sock);
      sock.once('close', () => this.socks.delete(sock));
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('error', () => undefined);
      sock.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.length > MAX_LINE) { sock.end(JSON.stringify({ id: null, ok: false, error: 'request too large' }) + '\n'); return; }
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          void this.answer(line).then((out) => sock.write(out + '\n'));
        }
      });
    });
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(this.path, () => resolve()); });
    // Belt and braces for an AdminServer started without startNode's umask (startRuntime alone, tests).
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  private async answer(line: string): Promise<string> {
    let id: unknown = null;
    try {
      const req = JSON.parse(line) as { id?: unknown; cmd?: unknown; args?: unknown };
      id = req.id ?? null;
      const handler = typeof req.cmd === 'string' ? this.handlers.get(req.cmd) : undefined;
      if (!handler) return JSON.stringify({ id, ok: false, error: `unknown command ${JSON.stringify(req.cmd)}; known: ${[...this.handlers.keys()].join(', ')}` });
      const result = await handler((req.args ?? {}) as Record<string, unknown>);
      return JSON.stringify({ id, ok: true, result });
    } catch (err) {
      return JSON.stringify({ id, ok: false, error: err instanceof SyntaxError ? `bad request: ${err.message}` : (err as Error).message });
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => { s.close(() => r()); for (const sock of this.socks) sock.destroy(); });
    if (existsSync(this.path)) unlinkSync(this.path);
  }
}
