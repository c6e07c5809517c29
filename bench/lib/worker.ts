// A long-lived load worker (plain worker_threads: its event loop must keep running between commands,
// which piscina's default atomics mode would freeze). Holds its share of the sessions, runs the main
// thread's commands one at a time and reports counters and latency histograms twice a second.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { XmppClient } from './client.ts';
import { attr, escapeXml, stanzaName } from './parser.ts';
import { Histogram } from './histogram.ts';
import type { Command, StatsReport, WorkerInit } from './protocol.ts';

const REPORT_MS = 500;

interface Session {
  user: number;
  client: XmppClient;
  peer: Session | null; // chat partner, same worker
  inflight: number;
  sent: number;
  recv: number;
  nick: string; // MUC nickname
  mucSender: boolean;
}

export class LoadWorker {
  private sessions = new Map<number, Session>();
  private lat = new Histogram();
  private loginH = new Histogram();
  private tlsH = new Histogram();
  private sent = 0;
  private recv = 0;
  private logins = 0;
  private loginFails = 0;
  private closedUnexpectedly = 0;
  private errors: string[] = [];
  private running = false;
  private clockOffset: number;
  private totalSent = 0;
  private totalRecv = 0;
  private timers: NodeJS.Timeout[] = [];
  private room = '';

  private pad: string;

  constructor(readonly init: WorkerInit, private emit: (m: StatsReport) => void) {
    this.pad = 'x'.repeat(Math.max(1, init.padding ?? 1));
    // One clock for all threads: message timestamps are read by another worker in MUC runs.
    this.clockOffset = performance.timeOrigin - init.mainTimeOrigin;
  }

  now(): number { return performance.now() + this.clockOffset; }

  report(): void {
    this.emit({
      type: 'stats', index: this.init.index, sent: this.sent, recv: this.recv, logins: this.logins,
      loginFails: this.loginFails, closedUnexpectedly: this.closedUnexpectedly,
      lat: this.lat.toSparse(), login: this.loginH.toSparse(), tls: this.tlsH.toSparse(), errors: this.errors,
    });
    this.sent = this.recv = this.logins = this.loginFails = this.closedUnexpectedly = 0;
    this.lat.reset(); this.loginH.reset(); this.tlsH.reset();
    this.errors = [];
  }

  private noteError(e: unknown): void {
    if (this.errors.length < 5) this.errors.push(e instanceof Error ? e.message : String(e));
  }

  async run(cmd: Command): Promise<Record<string, unknown> | undefined> {
    switch (cmd.op) {
      case 'login': return this.login(cmd.users, cmd.concurrency, cmd.hold, cmd.presence, cmd.tag ?? 'bench');
      case 'scram-warm': return this.scramWarm(cmd.users, cmd.concurrency);
      case 'chat': return this.chat(cmd);
      case 'churn': this.churn(cmd.users, cmd.rate, cmd.durationMs); return undefined;
      case 'stop': return this.stop();
      case 'drain': return this.drain(cmd.expect, cmd.drainMs);
      case 'muc-probe': return this.mucProbe();
      case 'muc-join': return this.mucJoin(cmd.room, cmd.users, cmd.size);
      case 'muc': return this.muc(cmd);
      case 'close': return this.closeAll();
    }
  }

  private client(user: number, resource: string, warmOnly = false): XmppClient {
    const { endpoint: e, tls, mechanism, sasl2, password, loginTimeoutMs, coalesce } = this.init;
    return new XmppClient({
      host: e.host, port: tls === 'direct' ? e.tlsPort ?? e.port : e.port, domain: e.domain,
      username: 'u' + user, password, resource, tls, mechanism, sasl2, timeoutMs: loginTimeoutMs, coalesce, warmOnly,
    });
  }

  /** Caches every user's SCRAM salted password (as a returning client has it), uncounted. */
  private async scramWarm(users: number[], concurrency: number) {
    let next = 0, failed = 0;
    const lane = async () => {
      while (next < users.length) {
        const c = this.client(users[next++], 'warm', true);
        try { await c.login(); } catch (e) { failed++; this.noteError(e); }
        c.destroy();
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, users.length)) }, lane));
    return { failed };
  }

  private async loginOne(user: number, hold: boolean, presence: boolean, resource: string): Promise<boolean> {
    const c = this.client(user, resource);
    try {
      const t = await c.login();
      this.logins++;
      this.loginH.record(t.totalMs * 1000);
      if (t.tlsMs) this.tlsH.record(t.tlsMs * 1000);
    } catch (e) {
      this.loginFails++;
      this.noteError(e);
      return false;
    }
    if (!hold) { void c.close(); return true; }
    const s: Session = { user, client: c, peer: null, inflight: 0, sent: 0, recv: 0, nick: 'u' + user, mucSender: false };
    this.sessions.set(user, s);
    c.onStanza = (x) => this.onStanza(s, x);
    c.onClose = (err) => { if (err) { this.closedUnexpectedly++; this.noteError(err); } };
    if (presence) c.send('<presence/>');
    return true;
  }

  private async login(users: number[], concurrency: number, hold: boolean, presence: boolean, resource: string) {
    let next = 0, ok = 0;
    const lane = async () => {
      while (next < users.length) {
        const u = users[next++];
        if (await this.loginOne(u, hold, presence, resource)) ok++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, users.length)) }, lane));
    return { ok, failed: users.length - ok };
  }

  // --- stanzas in ---

  private onStanza(s: Session, x: string): void {
    const c0 = x.charCodeAt(1);
    if (c0 === 109 /* m */) { this.onMessage(s, x); return; }
    if (c0 === 105 /* i */ && attr(x, 'type') === 'get') {
      // Answer server pings (and anything else asked) so idle sessions stay up.
      const id = attr(x, 'id') ?? '';
      const from = attr(x, 'from');
      s.client.send(`<iq type='result' id='${escapeXml(id)}'${from ? ` to='${escapeXml(from)}'` : ''}/>`);
    }
  }

  private onMessage(s: Session, x: string): void {
    const b = x.indexOf('<body>');
    if (b < 0) return;
    const e = x.indexOf('</body>', b);
    const body = x.slice(b + 6, e);
    const sp = body.indexOf(' ');
    if (sp < 0) return;
    const ts = +body.slice(sp + 1, body.indexOf(' ', sp + 1) >>> 0);
    const lat = (this.now() - ts) * 1000;
    this.lat.record(lat);
    this.recv++;
    this.totalRecv++;
    s.recv++;
    if (this.room) {
      // Our own message reflected by the room completes one of our in-flight sends.
      if (s.mucSender && body.endsWith(' ' + s.nick)) {
        s.inflight--;
        if (this.running && this.closedLoop) this.sendMuc(s);
      }
      return;
    }
    const p = s.peer;
    if (p) {
      p.inflight--;
      if (this.running && this.closedLoop) this.sendChat(p, this.now());
    }
  }

  // --- 1:1 chat ---

  private closedLoop = true;
  private seq = 0;

  private sendChat(from: Session, ts: number): void {
    const to = from.peer!;
    from.inflight++;
    from.sent++;
    this.sent++;
    this.totalSent++;
    const jid = this.init.toBare ? to.client.jid.slice(0, to.client.jid.indexOf('/') >>> 0) : to.client.jid;
    from.client.send(`<message to='${jid}' type='chat' id='m${++this.seq}'><body>${this.seq} ${ts.toFixed(3)} ${this.pad}</body></message>`);
  }

  private async chat(cmd: Extract<Command, { op: 'chat' }>) {
    const senders: Session[] = [];
    for (const [a, b] of cmd.pairs) {
      const sa = this.sessions.get(a), sb = this.sessions.get(b);
      if (!sa || !sb) continue;
      sa.peer = sb; sb.peer = sa;
      senders.push(sa, sb);
    }
    this.room = '';
    this.totalSent = this.totalRecv = 0;
    this.running = true;
    this.closedLoop = cmd.mode === 'closed';
    if (this.closedLoop) {
      const t = this.now();
      for (const s of senders) for (let i = 0; i < cmd.inflight; i++) this.sendChat(s, t);
    } else if (senders.length && cmd.rate > 0) {
      // Open loop: messages are stamped with their scheduled time, so a late send shows as latency
      // (no coordinated omission).
      const start = this.now();
      const interval = 1000 / cmd.rate;
      let issued = 0;
      const tick = () => {
        if (!this.running) return;
        const now = this.now();
        const due = Math.floor((now - start) / interval) + 1;
        while (issued < due) {
          this.sendChat(senders[issued % senders.length], start + issued * interval);
          issued++;
        }
      };
      this.timers.push(setInterval(tick, 1));
    }
    if (cmd.durationMs > 0) this.timers.push(setTimeout(() => { this.running = false; }, cmd.durationMs));
    return { senders: senders.length };
  }

  /** Stops sending; what was sent is still arriving. */
  private async stop() {
    this.running = false;
    for (const t of this.timers) { clearInterval(t); clearTimeout(t); }
    this.timers = [];
    return { sent: this.totalSent, recv: this.totalRecv };
  }

  /** Waits until `expect` messages arrived here or the drain timeout passed; what is missing is lost. */
  private async drain(expect: number, drainMs: number) {
    const until = performance.now() + drainMs;
    while (this.totalRecv < expect && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    return { sent: this.totalSent, recv: this.totalRecv };
  }

  // --- login churn (soak) ---

  private churn(users: number[], rate: number, durationMs: number): void {
    if (!users.length || rate <= 0) return;
    let i = 0, n = 0;
    const start = performance.now();
    const t = setInterval(() => {
      const due = Math.floor((performance.now() - start) * rate / 1000);
      while (n < due) {
        n++;
        void this.loginOne(users[i++ % users.length], false, false, 'churn' + n);
      }
      if (performance.now() - start > durationMs) clearInterval(t);
    }, 10);
    this.timers.push(t);
  }

  // --- MUC ---

  private async mucProbe() {
    const s = this.sessions.values().next().value as Session | undefined;
    if (!s) return { service: null, reason: 'no session to probe with' };
    const c = s.client;
    const items = await c.iq("<query xmlns='http://jabber.org/protocol/disco#items'/>", 'get', this.init.endpoint.domain);
    const jids = [...items.matchAll(/<item\b[^>]*\bjid=(['"])([^'"]+)\1/g)].map((m) => m[2]);
    for (const jid of jids) {
      const info = await c.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>", 'get', jid).catch(() => '');
      if (/category=(['"])conference\1/.test(info) && info.includes('http://jabber.org/protocol/muc')) {
        return { service: jid };
      }
    }
    return { service: null, reason: `no conference service in disco#items of ${this.init.endpoint.domain}` };
  }

  private async mucJoin(room: string, users: number[], size: number) {
    this.room = room;
    let created = false;
    for (const u of users) {
      const s = this.sessions.get(u);
      if (!s) continue;
      const own = `${room}/${s.nick}`;
      const joined = new Promise<string>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`join of ${own} timed out`)), 30_000);
        const prev = s.client.onStanza;
        s.client.onStanza = (x) => {
          if (stanzaName(x) === 'presence' && attr(x, 'from') === own) {
            clearTimeout(t);
            s.client.onStanza = prev;
            if (attr(x, 'type') === 'error') rej(new Error('join refused: ' + x.slice(0, 300)));
            else res(x);
          } else if (prev) prev(x);
        };
      });
      s.client.send(`<presence to='${escapeXml(own)}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
      const p = await joined;
      if (/<status[^>]*code=(['"])201\1/.test(p)) {
        // A new room may be locked until configured: the defaults, but room for every occupant
        // (servers allow 200 by default).
        const form = size > 200
          ? `<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_maxusers'><value>${size}</value></field>`
          : '';
        await s.client.iq(`<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>${form}</x></query>`, 'set', room);
        created = true;
      }
    }
    return { joined: users.length, created };
  }

  private mucSeq = 0;
  private sendMuc(s: Session): void {
    s.inflight++;
    s.sent++;
    this.sent++;
    this.totalSent++;
    s.client.send(`<message to='${this.room}' type='groupchat' id='g${++this.mucSeq}'><body>${this.mucSeq} ${this.now().toFixed(3)} ${this.pad} ${s.nick}</body></message>`);
  }

  private async muc(cmd: Extract<Command, { op: 'muc' }>) {
    this.room = cmd.room;
    this.totalSent = this.totalRecv = 0;
    this.running = true;
    this.closedLoop = true;
    for (const u of cmd.senders) {
      const s = this.sessions.get(u);
      if (!s) continue;
      s.mucSender = true;
      for (let i = 0; i < cmd.inflight; i++) this.sendMuc(s);
    }
    if (cmd.durationMs > 0) this.timers.push(setTimeout(() => { this.running = false; }, cmd.durationMs));
    return {};
  }

  private async closeAll() {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) s.client.onClose = null;
    await Promise.all(all.map((s) => s.client.close()));
    return { closed: all.length };
  }
}

// Worker entry: only when loaded as a worker thread with our init data.
if (parentPort && workerData && (workerData as { chorusBench?: boolean }).chorusBench) {
  const port = parentPort;
  const w = new LoadWorker((workerData as { init: WorkerInit }).init, (m) => port.postMessage(m));
  const timer = setInterval(() => w.report(), REPORT_MS);
  let queue = Promise.resolve();
  port.on('message', (m: { seq: number; cmd: Command } | 'exit') => {
    if (m === 'exit') { clearInterval(timer); w.report(); port.close(); return; }
    queue = queue.then(async () => {
      try {
        const data = await w.run(m.cmd);
        w.report(); // everything counted so far arrives before the ack (one port, in order)
        port.postMessage({ type: 'ack', op: m.cmd.op, seq: m.seq, ok: true, data });
      } catch (e) {
        port.postMessage({ type: 'ack', op: m.cmd.op, seq: m.seq, ok: false, error: e instanceof Error ? e.message : String(e) });
      }
    });
  });
}
