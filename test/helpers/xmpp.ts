// A real Chorus node for c2s tests: free loopback ports, a temp data dir, accounts created in its DB.
import { Level } from 'level';
import { rosterKeys, type RosterItem } from '../../src/modules/roster-store.ts';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { connect as tlsConnect, type ConnectionOptions as TlsOptions, type TLSSocket } from 'node:tls';
import { rmSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dataPaths, defaultConfig, type ChorusConfig } from '../../src/config/index.ts';
import { AdminClient } from '../../src/cli/admin-client.ts';
import { startNode, type ChorusNode } from '../../src/node.ts';
import { createAccount } from '../../src/storage/accounts.ts';
import { tempDir } from './runtime.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

export interface TestServer {
  node: ChorusNode;
  config: ChorusConfig;
  port: number;
  tlsPort: number;
  logs: string[];
  addUser(local: string, password?: string): Promise<void>;
  /** A command on the node's admin socket, as the chorus CLI sends it. */
  admin(cmd: string, args?: Record<string, unknown>): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startServer(over: (c: ChorusConfig) => void = () => {}): Promise<TestServer> {
  // A port freePort() found free may be taken before the node listens (another test's listener, or
  // a client socket's ephemeral port on a busy machine): then again with new ones.
  for (let attempt = 1; ; attempt++) {
    try { return await startServerOnce(over); } catch (e) {
      if (attempt === 3 || !/is already in use/.test((e as Error).message)) throw e;
    }
  }
}

async function startServerOnce(over: (c: ChorusConfig) => void): Promise<TestServer> {
  const dir = tempDir('chorus-c2s-');
  const config = defaultConfig(dir);
  config.data_dir = dir;
  config.hosts = ['localhost'];
  config.listen = { ...config.listen, address: '127.0.0.1', c2s: await freePort(), c2s_direct_tls: await freePort(), s2s: false, s2s_direct_tls: false, http: false, https: false, component: false };
  config.schedulers = 2;
  config.log_level = 'warn';
  over(config);
  const logs: string[] = [];
  const node = await startNode(config, { log: (level, text) => { logs.push(`[${level}] ${text}`); if (process.env.CHORUS_TEST_LOG) console.error(`[${level}] ${text}`); } });
  return {
    node, config, logs,
    port: config.listen.c2s as number,
    tlsPort: config.listen.c2s_direct_tls as number,
    addUser: async (local, password = 'secret') => { await createAccount(node.runtime.db, `${local}@localhost`, password, { iterations: 4096 }); },
    admin: async (cmd, args = {}) => {
      const client = await AdminClient.connect(dataPaths(config).adminSocket);
      if (!client) throw new Error('the node does not answer on its admin socket');
      try { return await client.request(cmd, args); } finally { client.close(); }
    },
    stop: async () => { await node.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Accounts `a` and `b` of the test server see each other's presence: a subscription both ways. */
export async function subscribedBothWays(server: TestServer, a: string, b: string): Promise<void> {
  const db = server.node.runtime.db as unknown as Level<string, unknown>;
  for (const [owner, contact] of [[a, b], [b, a]]) {
    const item: RosterItem = { jid: `${contact}@localhost`, groups: [], subscription: 'both', ask: false, approved: false, pendingIn: null, listed: true };
    await db.put(rosterKeys.item(`${owner}@localhost`, `${contact}@localhost`), item, { valueEncoding: 'json' });
  }
}

/** A test server with alice and bob (password 'pw'), who see each other's presence. */
export async function friendsServer(over?: (c: ChorusConfig) => void): Promise<TestServer> {
  const server = await startServer(over);
  for (const u of ['alice', 'bob']) await server.addUser(u, 'pw');
  await subscribedBothWays(server, 'alice', 'bob');
  return server;
}

/** A raw socket speaking XML by hand, for the error paths a client library would never produce. */
export class RawClient {
  private buf = '';
  private waiters: Array<{ re: RegExp; resolve: (s: string) => void; reject: (e: Error) => void; t: NodeJS.Timeout }> = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { this.buf += d; this.check(); });
    socket.on('close', () => { this.closed = true; this.check(); });
    socket.on('error', () => undefined);
  }
  /** A RawClient over an already connected socket (a TLS socket after STARTTLS). */
  static wrap(socket: Socket): RawClient { return new RawClient(socket); }
  /** `localAddress`: another loopback address to connect from (127.0.0.1 is exempt from the per-IP limit). */
  static connect(port: number, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => { const s = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(new RawClient(s))); s.once('error', reject); });
  }
  /** Direct TLS (XEP-0368), the test's self-signed certificate accepted. */
  static async connectTls(port: number): Promise<RawClient> {
    const t = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'] });
    await once(t, 'secureConnect');
    return new RawClient(t);
  }
  send(data: string | Buffer): void { this.socket.write(data); }
  /** Waits until everything received so far matches `re`; returns the text. */
  waitFor(re: RegExp, ms = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got: ${this.buf.slice(-500)}`)), ms);
      this.waiters.push({ re, resolve, reject, t });
      this.check();
    });
  }
  waitClosed(ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) { resolve(); return; }
      const t = setTimeout(() => reject(new Error('socket not closed')), ms);
      this.socket.once('close', () => { clearTimeout(t); resolve(); });
    });
  }
  get received(): string { return this.buf; }
  private cursor = 0;
  /** Waits for `re` in what arrived after the previous next() match, and moves past it. */
  async next(re: RegExp, ms = 5000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const rest = this.buf.slice(this.cursor);
      const m = re.exec(rest);
      if (m) { this.cursor += m.index + m[0].length; return m; }
      if (this.closed) throw new Error(`connection closed while waiting for ${re}; got: ${rest.slice(-600)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; got: ${rest.slice(-600)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  private check(): void {
    for (const w of [...this.waiters]) {
      if (w.re.test(this.buf)) { clearTimeout(w.t); this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(this.buf); }
    }
  }
  close(): void { this.socket.destroy(); }
}

export const OPEN = `<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;

/** STARTTLS on a raw client that has its stream features: the same stream, now over TLS. */
export async function starttls(c: RawClient, opts: TlsOptions = {}): Promise<{ c: RawClient; tls: TLSSocket }> {
  c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
  await c.next(/<proceed xmlns=["']urn:ietf:params:xml:ns:xmpp-tls["']\s*\/>/);
  const tls = tlsConnect({ socket: c.socket, servername: 'localhost', rejectUnauthorized: false, ...opts });
  const w = RawClient.wrap(tls);
  await once(tls, 'secureConnect');
  return { c: w, tls };
}

/** A raw stream over STARTTLS with its features, not authenticated (`header`: the stream header
 *  to open it with, before TLS and again after). */
export async function securedStream(port: number, header = OPEN): Promise<RawClient> {
  const plain = await RawClient.connect(port);
  plain.send(header);
  await plain.next(/<\/stream:features>/);
  const { c } = await starttls(plain);
  c.send(header);
  await c.next(/<\/stream:features>/);
  return c;
}

/** Logs in over a raw socket (PLAIN; in plaintext the server must allow it, i.e.
 *  c2s_require_encryption false; `directTls`: `port` is the Direct TLS one) and binds `resource`. */
export async function rawLogin(port: number, user: string, resource: string, password = 'secret', o: { directTls?: boolean } = {}): Promise<RawClient> {
  const c = o.directTls ? await RawClient.connectTls(port) : await RawClient.connect(port);
  c.send(OPEN);
  await c.waitFor(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
  await c.waitFor(/<success/);
  c.send(OPEN);
  await c.waitFor(/<bind xmlns/);
  c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  await c.waitFor(/id="bind1"/);
  return c;
}

/** Counts `<message>` elements with a body in what a raw client received. */
export function bodies(text: string): string[] {
  return [...text.matchAll(/<message[^>]*>.*?<body>([^<]*)<\/body>/g)].map((m) => m[1]!);
}

/** A Chorus node in a process of its own (test/fixtures/xmpp-node.ts on `dir`, c2s on `port`), for
 *  tests that SIGKILL it; resolves once it serves. */
export async function startNodeProcess(dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/xmpp-node.ts', import.meta.url)), dir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
    child.once('exit', (code) => reject(new Error(`node exited with ${code}`)));
  });
  return child;
}
