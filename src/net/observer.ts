// The web observer at /observer on the HTTP listeners: what Erlang's observer shows of a node, live,
// for the server's admins. The supervision tree with restart counts, actors per kind and per
// scheduler, mailbox depths and durable backlog, message rates, event-loop lag and memory per
// thread, the crash log; buttons to kill an actor and to hot-reload a kind, which run the operator's
// own commands (`chorus kill`, `chorus reload`). The page and its script are files of ours
// (observer/), no external assets; figures come as Server-Sent Events every SAMPLE_MS.
//
// Login: an admin's JID and password, checked against the stored SCRAM keys as PLAIN is (the same
// throttle, a missing account costing the same PBKDF2 run), only over TLS or from this machine (a
// reverse proxy). A session is a random cookie (HttpOnly, SameSite=Strict, Secure over TLS); every
// action also needs the session's CSRF token in a header and, when the browser names it, our origin.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runtime } from '../runtime/runtime.ts';
import type { AdminHandler } from '../runtime/admin.ts';
import { PlainServer, plainMessage } from '../sasl/plain.ts';
import { AuthThrottle } from '../sasl/throttle.ts';
import { accountLookup, hasRole } from '../storage/accounts.ts';
import { kvStorage } from '../storage/kv.ts';
import { parseJid, type Jid } from '../xmpp/jid.ts';
import { serialize, x } from '../xml/builder.ts';
import { overTls, webClient, type ConnectionCensus } from './census.ts';
import { traffic } from './traffic.ts';
import { readBody } from './http-body.ts';

export const OBSERVER_PATH = '/observer';
const SAMPLE_MS = 2000;
const SESSION_MS = 8 * 3600_000;
const MAX_SESSIONS = 64;
const MAX_STREAMS = 16;
const COOKIE = 'chorus_observer';

const asset = (name: string) => readFileSync(new URL(`./observer/${name}`, import.meta.url), 'utf8');
const ASSETS: Record<string, { type: string; body: string }> = {
  '/observer/app.js': { type: 'text/javascript; charset=utf-8', body: asset('app.js') },
  '/observer/app.css': { type: 'text/css; charset=utf-8', body: asset('app.css') },
};
const APP = asset('app.html');

const SECURITY = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  // Not no-referrer: with it the browser sends Origin: null, and sameOrigin() could not tell our forms.
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

export interface ObserverOptions {
  hosts: readonly string[];
  admins: readonly string[];
  serverSecret: string;
  census?: ConnectionCensus;
  log: (level: 'debug' | 'info' | 'warn' | 'error', text: string) => void;
}

interface Session { jid: string; csrf: string; expires: number }

/** What the page draws each SAMPLE_MS. */
export interface ObserverSample {
  at: number;
  uptimeSeconds: number;
  main: { rss: number; heapUsed: number };
  connections: { open: number; unauthenticated: number };
  stanzas: { in: number; out: number };
  schedulers: Array<{ thread: number; actors: number; mailboxDepth: number; durableQueued: number; handled: number; crashes: number; heapUsed: number; lagP99: number; lagMax: number }>;
  kinds: Record<string, { actors: number; byScheduler: Record<string, number>; version: number; loads: number }>;
  tree: ReturnType<Runtime['tree']>;
  crashes: Runtime['crashLog'];
  restarts: Runtime['counters'];
  /** How long the schedulers took to answer the stats request: their responsiveness. */
  statsMs: number;
}

export interface ObserverEndpoint { handle(req: IncomingMessage, res: ServerResponse): void }

export function observerEndpoint(rt: Runtime, o: ObserverOptions): ObserverEndpoint {
  const sessions = new Map<string, Session>();
  const throttle = new AuthThrottle();
  const streams = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | null = null;

  const sample = async (): Promise<ObserverSample> => {
    const t0 = performance.now();
    const stats = await rt.stats();
    const statsMs = Math.round((performance.now() - t0) * 10) / 10;
    const kinds: ObserverSample['kinds'] = {};
    for (const [k, v] of Object.entries(stats[0]?.kinds ?? {})) kinds[k] = { actors: 0, byScheduler: {}, version: v.version, loads: v.loads };
    for (const s of stats) {
      for (const [k, n] of Object.entries(s.byKind)) {
        const e = (kinds[k] ??= { actors: 0, byScheduler: {}, version: 0, loads: 0 });
        e.actors += n;
        e.byScheduler[s.thread] = n;
      }
    }
    const mem = process.memoryUsage();
    return {
      at: Date.now(), uptimeSeconds: Math.round((Date.now() - rt.started) / 1000),
      main: { rss: mem.rss, heapUsed: mem.heapUsed },
      connections: { open: o.census?.open ?? 0, unauthenticated: o.census?.notAuthenticated ?? 0 },
      stanzas: { in: traffic.in.message + traffic.in.presence + traffic.in.iq, out: traffic.out.message + traffic.out.presence + traffic.out.iq },
      schedulers: stats.map((s) => ({ thread: s.thread, actors: s.actors, mailboxDepth: s.mailboxDepth, durableQueued: s.durableQueued, handled: s.handled, crashes: s.crashes, heapUsed: s.heapUsed, lagP99: s.eventLoopLagMs.p99, lagMax: s.eventLoopLagMs.max })),
      kinds, tree: rt.tree(), crashes: rt.crashLog.slice(-50), restarts: { ...rt.counters }, statsMs,
    };
  };

  // One sample for every open page, taken while any is open.
  const tick = () => {
    sample().then((s) => {
      const data = `data: ${JSON.stringify(s)}\n\n`;
      for (const res of streams) res.write(data);
    }, (err: Error) => o.log('warn', `observer: ${err.message}`));
  };
  const watch = (res: ServerResponse) => {
    streams.add(res);
    timer ??= setInterval(tick, SAMPLE_MS).unref();
    res.on('close', () => {
      streams.delete(res);
      if (!streams.size && timer) { clearInterval(timer); timer = null; }
    });
    tick();
  };

  const sessionOf = (req: IncomingMessage): Session | null => {
    const token = cookies(req)[COOKIE];
    const s = token ? sessions.get(token) : undefined;
    if (!s) return null;
    if (s.expires < Date.now()) { sessions.delete(token!); return null; }
    s.expires = Date.now() + SESSION_MS;
    return s;
  };

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { remote, secure } = webClient(req, overTls(req));
    if (!secure) { loginPage(res, 403, 'The observer takes passwords only over HTTPS (or from this machine, behind a proxy).'); return; }
    if (!sameOrigin(req)) { loginPage(res, 403, 'This form must be sent from its own page.'); return; }
    const form = new URLSearchParams((await readBody(req, 4096)) ?? '');
    let jid: Jid | null = null;
    try { jid = parseJid(form.get('jid')?.trim() ?? ''); } catch { /* refused below like a wrong password */ }
    const password = form.get('password') ?? '';
    const bare = jid && !jid.resource && jid.local && o.hosts.includes(jid.domain) ? `${jid.local}@${jid.domain}` : null;
    let ok = false;
    if (bare && password) {
      const plain = new PlainServer({ lookup: accountLookup(rt.db, jid!.domain), serverSecret: o.serverSecret, throttle, address: remote });
      const step = await plain.start(plainMessage(jid!.local!, password));
      ok = step.kind === 'success' && (o.admins.includes(bare) || await hasRole(kvStorage(rt.db), bare, 'admin'));
      // A wrong password waits as a SASL failure would (the throttle's backoff).
      if (step.kind === 'failure' && step.delayMs) await new Promise((r) => setTimeout(r, Math.min(step.delayMs!, 5000)));
    }
    if (!ok) {
      o.log('info', `observer: login refused for ${form.get('jid') ?? '?'} from ${remote}`);
      loginPage(res, 401, 'Wrong address or password, or not one of the server\'s admins.');
      return;
    }
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    const token = randomBytes(24).toString('base64url');
    sessions.set(token, { jid: bare!, csrf: randomBytes(24).toString('base64url'), expires: Date.now() + SESSION_MS });
    o.log('info', `observer: ${bare} logged in from ${remote}`);
    res.writeHead(303, { ...SECURITY, Location: OBSERVER_PATH, 'Set-Cookie': cookie(token, overTls(req), SESSION_MS / 1000) });
    res.end();
  }

  async function action(req: IncomingMessage, res: ServerResponse, s: Session, what: 'kill' | 'reload'): Promise<void> {
    const given = String(req.headers['x-csrf-token'] ?? '');
    if (!sameOrigin(req) || given.length !== s.csrf.length || !timingSafeEqual(Buffer.from(given), Buffer.from(s.csrf))) { json(res, 403, { error: 'missing or wrong CSRF token' }); return; }
    let args: Record<string, unknown>;
    try { args = JSON.parse((await readBody(req, 4096)) ?? '') as Record<string, unknown>; } catch { json(res, 400, { error: 'a JSON object is expected' }); return; }
    const admin = rt.service('admin') as Record<string, AdminHandler> | undefined;
    if (!admin?.[what]) { json(res, 503, { error: 'the node is not ready' }); return; }
    const arg = what === 'kill' ? { address: args.address } : { kind: args.kind };
    try {
      const result = await admin[what]!(arg);
      o.log('info', `observer: ${s.jid} ran ${what} ${JSON.stringify(arg)}`);
      json(res, 200, { result });
    } catch (err) {
      json(res, 400, { error: (err as Error).message });
    }
  }

  async function actors(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const kind = q.get('kind') ?? undefined;
    const filter = q.get('q') ?? '';
    const stats = await rt.stats(true, kind);
    const list = stats.flatMap((s) => (s.list ?? []).map((a) => ({ ...a, scheduler: s.thread })))
      .filter((a) => a.address.includes(filter))
      .sort((a, b) => b.queue - a.queue || a.address.localeCompare(b.address));
    json(res, 200, { total: list.length, actors: list.slice(0, 500) });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const asset = ASSETS[path];
    if (asset && req.method === 'GET') { send(res, 200, asset.type, asset.body); return; }
    if (path === `${OBSERVER_PATH}/login` && req.method === 'POST') { await login(req, res); return; }
    const s = sessionOf(req);
    if (path === OBSERVER_PATH && req.method === 'GET') {
      if (s) send(res, 200, 'text/html; charset=utf-8', APP.replace('%CSRF%', s.csrf).replace('%JID%', s.jid));
      else loginPage(res, 200);
      return;
    }
    if (!s) { json(res, 401, { error: 'log in first' }); return; }
    if (path === `${OBSERVER_PATH}/logout` && req.method === 'POST') {
      if (sameOrigin(req)) sessions.delete(cookies(req)[COOKIE]!);
      res.writeHead(303, { ...SECURITY, Location: OBSERVER_PATH, 'Set-Cookie': cookie('', overTls(req), 0) });
      res.end();
      return;
    }
    if (path === `${OBSERVER_PATH}/events` && req.method === 'GET') {
      if (streams.size >= MAX_STREAMS) { json(res, 503, { error: 'too many observers open' }); return; }
      res.writeHead(200, { ...SECURITY, 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
      res.write(`retry: ${SAMPLE_MS}\n\n`);
      watch(res);
      return;
    }
    if (path === `${OBSERVER_PATH}/actors` && req.method === 'GET') { await actors(req, res); return; }
    if ((path === `${OBSERVER_PATH}/kill` || path === `${OBSERVER_PATH}/reload`) && req.method === 'POST') {
      await action(req, res, s, path.endsWith('kill') ? 'kill' : 'reload');
      return;
    }
    json(res, 404, { error: 'not found' });
  }

  return {
    handle: (req, res) => {
      route(req, res).catch((err: Error) => {
        o.log('error', `observer: ${err.stack ?? err.message}`);
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
      });
    },
  };
}


/** A browser that names where a request comes from must name us (CSRF; SameSite does the rest). */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try { return new URL(origin).host === req.headers.host; } catch { return false; }
}

function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

const cookie = (token: string, secure: boolean, maxAge: number) =>
  `${COOKIE}=${token}; Path=${OBSERVER_PATH}; HttpOnly; SameSite=Strict; Max-Age=${Math.round(maxAge)}${secure ? '; Secure' : ''}`;

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { ...SECURITY, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', JSON.stringify(value));
}

function loginPage(res: ServerResponse, status: number, problem?: string): void {
  const html = `<!DOCTYPE html>${serialize(x('html', { lang: 'en' },
    x('head', null, x('meta', { charset: 'utf-8' }), x('meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' }),
      x('title', null, 'Chorus observer'), x('link', { rel: 'icon', href: 'data:,' }), x('link', { rel: 'stylesheet', href: `${OBSERVER_PATH}/app.css` })),
    x('body', { class: 'login' },
      x('form', { method: 'post', action: `${OBSERVER_PATH}/login`, class: 'card' },
        x('h1', null, 'Chorus observer'),
        x('p', { class: 'muted' }, 'For the server\'s admins: log in with your XMPP address and password.'),
        problem ? x('p', { class: 'problem', role: 'alert' }, problem) : null,
        x('label', null, 'Address', x('input', { name: 'jid', type: 'text', autocomplete: 'username', placeholder: 'admin@example.org', required: 'required' })),
        x('label', null, 'Password', x('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: 'required' })),
        x('button', { type: 'submit' }, 'Log in')))))}`;
  send(res, status, 'text/html; charset=utf-8', html);
}
