// The client stream's machine, transition by transition (xstate's transition(): no threads, no
// sockets, nothing carried out): each test feeds events and reads the state, the context and the
// named actions with their parameters. The same decisions over real sockets: auth, sm, errors tests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initialTransition, transition, type AnyMachineSnapshot } from 'xstate';
import { sessionMachine, type SessionEvent } from '../../actors/session/machine.ts';
import session from '../../actors/session/index.ts';
import type { SaslStep } from '../../src/sasl/types.ts';
import { feed, HEADER } from '../helpers/framer.ts';

type Action = { type: string; params?: any };

interface Server { requireTls?: boolean; gone?: boolean; sasl2?: boolean; preauth?: boolean }

/** The machine with what it reads of the server fixed: it serves `localhost`; TLS is required if
 *  `requireTls`; the connection is alive unless `gone`. */
function machine(o: Server) {
  return sessionMachine.provide({
    guards: {
      servedHost: ({ event }) => (event as { to?: string }).to === 'localhost',
      tlsRequired: () => o.requireTls === true,
      connGone: () => o.gone === true,
      sasl2Offered: () => o.sasl2 === true,
      preauthIqTaken: ({ event }) => o.preauth === true && (event as { h: { name: string } }).h.name === 'iq',
    },
  });
}

const INFO = { conn: 'conn:b.1', remote: '127.0.0.1', secure: false, directTls: false, host: null, cb: null };

class Stream {
  m: ReturnType<typeof machine>;
  snap: AnyMachineSnapshot;
  actions: Action[] = [];
  /** The SASL steps the last transition started. */
  steps: unknown[] = [];
  constructor(o: Server = {}) {
    this.m = machine(o);
    [this.snap] = initialTransition(this.m, INFO);
  }
  send(event: SessionEvent | { type: string; [k: string]: unknown }): this {
    const [snap, actions] = transition(this.m, this.snap, event as SessionEvent);
    this.snap = snap;
    this.actions = actions as Action[];
    this.steps = this.actions.filter((a) => a.type === 'saslStep').map((a) => a.params);
    return this;
  }
  header(to = 'localhost', o: { version?: string; xmlns?: string } = {}): this {
    return this.send({ type: 'header', to, from: null, version: o.version ?? '1.0', lang: null, xmlns: o.xmlns ?? 'jabber:client' });
  }
  /** A stanza as the connection's framer reports it. */
  stanza(xml: string, seq = 0): this {
    const ev = feed(HEADER + xml).events.find((e) => e.t === 'stanza') as { xml: string; h: any };
    return this.send({ type: 'stanza', xml: ev.xml, h: ev.h, seq });
  }
  /** The outcome of the SASL step in progress. */
  sasl(step: SaslStep): this { return this.send({ type: 'sasl', n: this.ctx.saslSeq, step }); }
  get state(): unknown { return this.snap.value; }
  get ctx(): any { return this.snap.context; }
  /** The named actions of the last transition, as [type, params]. */
  get did(): Array<[string, unknown]> { return this.actions.map((a) => [a.type, a.params]); }
  /** What the last transition told the connection. */
  toConn(): any[] { return this.actions.filter((a) => a.type === 'toConn').map((a) => a.params); }
  toUser(): any[] { return this.actions.filter((a) => a.type === 'toUser').map((a) => a.params); }
  closedWith(): string { const c = this.toConn().find((m) => m.type === 'close'); return c?.xml ?? ''; }

  /** Up to bind: header, PLAIN success, header again. */
  authenticated(): this {
    return this.header().stanza("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>")
      .sasl({ kind: 'success', authcid: 'alice' }).header();
  }
  bound(resource = 'phone'): this {
    return this.authenticated().stanza(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`, 1)
      .send({ type: 'bind-ok', resource }).send({ type: 'runtime.moved' });
  }
}

const AUTH = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hbGljZSxyPWFiYw==</auth>";
const wrong = (extra: Partial<Extract<SaslStep, { kind: 'failure' }>> = {}): SaslStep => ({ kind: 'failure', condition: 'not-authorized', reason: 'wrong', wrongCredentials: true, ...extra });

// ---- the header --------------------------------------------------------------------------------

test('a fresh session waits for the header; a good one opens the stream and writes our header and features', () => {
  const s = new Stream();
  assert.is(s.state, 'opening');
  s.header();
  assert.is(s.state, 'open');
  assert.is(s.ctx.host, 'localhost');
  assert.ok(s.ctx.streamId.length >= 12);
  assert.equal(s.did, [['writeHeader', undefined]]);
});

test('a bad header ends the stream with the right error, our header first', () => {
  for (const [s, condition] of [
    [new Stream().header('localhost', { xmlns: 'jabber:server' }), 'invalid-namespace'],
    [new Stream().header('elsewhere.example'), 'host-unknown'],
    [new Stream().header('localhost', { version: '0.9' }), 'unsupported-version'],
  ] as const) {
    assert.is(s.state, 'closing', condition);
    assert.match(s.closedWith(), /^<\?xml version='1.0'\?><stream:stream /);
    assert.match(s.closedWith(), new RegExp(`<${condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>`));
  }
});

test('a stanza before any header is not well-formed', () => {
  const s = new Stream().stanza('<message/>');
  assert.is(s.state, 'closing');
  assert.match(s.closedWith(), /not-well-formed/);
});

// ---- STARTTLS ------------------------------------------------------------------------------------

test('STARTTLS: proceed, wait for TLS, then a new header; twice is a policy violation', () => {
  const s = new Stream().header().stanza("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  assert.is(s.state, 'securing');
  assert.equal(s.toConn(), [{ type: 'starttls', xml: '<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>' }]);
  s.stanza('<presence/>');
  assert.is(s.state, 'closing', 'data before TLS');
  const t = new Stream().header().stanza("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").send({ type: 'tls', host: 'localhost', cb: { 'tls-exporter': 'AA==' } });
  assert.is(t.state, 'opening');
  assert.is(t.ctx.secure, true);
  assert.equal(t.ctx.cb, { 'tls-exporter': 'AA==' });
  t.header().stanza("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  assert.is(t.state, 'closing');
  assert.match(t.closedWith(), /policy-violation.*TLS is already on/);
});

test('with TLS required, anything but STARTTLS on a plain stream is a policy violation', () => {
  const s = new Stream({ requireTls: true }).header().stanza(AUTH);
  assert.is(s.state, 'closing');
  assert.match(s.closedWith(), /policy-violation.*STARTTLS is required/);
});

// ---- SASL ----------------------------------------------------------------------------------------

test('SASL: <auth/> starts a step (an effect); a challenge waits for the response, which runs the next step', () => {
  const s = new Stream().header().stanza(AUTH);
  assert.equal(s.state, { authenticating: 'working' });
  assert.is(s.ctx.mechanism, 'SCRAM-SHA-1');
  assert.equal(s.steps, [{ n: 1, op: 'start', mechanism: 'SCRAM-SHA-1', payload: 'biwsbj1hbGljZSxyPWFiYw==', secure: false, cb: null, cbRefused: false, host: 'localhost', remote: '127.0.0.1' }]);
  s.sasl({ kind: 'challenge', data: Buffer.from('r=abc') });
  assert.equal(s.state, { authenticating: 'waiting' });
  assert.equal(s.toConn(), [{ type: 'write', xml: '<challenge xmlns="urn:ietf:params:xml:ns:xmpp-sasl">cj1hYmM=</challenge>' }]);
  s.stanza("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdz</response>");
  assert.equal(s.state, { authenticating: 'working' });
  assert.equal(s.steps, [{ n: 2, op: 'step', payload: 'Yz1iaXdz' }]);
});

test("SASL: the outcome of a step of an exchange since aborted is not the new exchange's", () => {
  const s = new Stream().header().stanza(AUTH).stanza("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").stanza(AUTH);
  assert.equal(s.state, { authenticating: 'working' });
  s.send({ type: 'sasl', n: 1, step: { kind: 'success', authcid: 'mallory' } });
  assert.equal(s.state, { authenticating: 'working' });
  assert.equal(s.did, []);
  s.sasl({ kind: 'challenge', data: Buffer.from('x') });
  assert.equal(s.state, { authenticating: 'waiting' });
});

test('SASL success: logged, the connection told the JID, the exchange forgotten; the restarted stream is for binding', () => {
  const s = new Stream().header().stanza(AUTH).sasl({ kind: 'success', authcid: 'alice', data: Buffer.from('v=x') });
  assert.is(s.state, 'opening');
  assert.is(s.ctx.user, 'alice');
  assert.equal(s.did.map(([t]) => t), ['forgetSasl', 'logLogin', 'toConn'], 'exit actions first');
  assert.equal(s.toConn(), [{ type: 'authenticated', xml: '<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl">dj14</success>', jid: 'alice@localhost', restart: true }]);
  s.header();
  assert.is(s.state, 'binding');
  assert.equal(s.did, [['writeHeader', undefined]]);
});

test('SASL failure: answered and back to open; only wrong credentials count, and the fifth closes the stream', () => {
  const s = new Stream().header();
  s.stanza(AUTH).sasl({ kind: 'failure', condition: 'invalid-mechanism', reason: 'not offered' });
  assert.is(s.state, 'open');
  assert.is(s.ctx.saslFailures, 0);
  for (let i = 1; i <= 4; i++) {
    s.stanza(AUTH).sasl(wrong());
    assert.is(s.state, 'open');
    assert.is(s.ctx.saslFailures, i);
    assert.equal(s.toConn(), [{ type: 'write', xml: '<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized/></failure>' }]);
  }
  s.stanza(AUTH).sasl(wrong());
  assert.is(s.state, 'closing');
  assert.match(s.closedWith(), /^<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><\/failure><stream:error>.*policy-violation/);
});

test('SASL: a throttled failure is written later; a refused binding type is remembered', () => {
  const s = new Stream().header().stanza(AUTH).sasl(wrong({ delayMs: 800 }));
  assert.equal(s.did.find(([t]) => t === 'writeLater'), ['writeLater', { xml: '<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized/></failure>', ms: 800 }]);
  s.stanza(AUTH).sasl({ kind: 'failure', condition: 'not-authorized', reason: 'cb', unsupportedBinding: true });
  assert.is(s.ctx.cbRefused, true);
});

test('SASL: <abort/> is answered; anything else out of turn ends the stream', () => {
  const a = new Stream().header().stanza(AUTH).sasl({ kind: 'challenge', data: Buffer.from('x') }).stanza("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
  assert.is(a.state, 'open');
  assert.equal(a.toConn(), [{ type: 'write', xml: '<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><aborted/></failure>' }]);
  assert.ok(a.did.some(([t]) => t === 'forgetSasl'));
  const b = new Stream().header().stanza(AUTH).stanza("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
  assert.is(b.state, 'closing');
  assert.match(b.closedWith(), /policy-violation/);
  const c = new Stream().header().stanza(AUTH).sasl({ kind: 'challenge', data: Buffer.from('x') }).stanza('<message/>');
  assert.match(c.closedWith(), /not-authorized/);
});

// ---- SASL2 (XEP-0388) with Bind 2 (XEP-0386) -------------------------------------------------------

const AUTHENTICATE = "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'><initial-response>biwsbj1hbGljZSxyPWFiYw==</initial-response>"
  + "<user-agent id='install-1'/><bind xmlns='urn:xmpp:bind:0'><tag>Phone</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind></authenticate>";

test('SASL2: the exchange in its own namespace; success asks the user actor for a resource, and <success/> waits for its answer', () => {
  const s = new Stream({ sasl2: true }).header().stanza(AUTHENTICATE);
  assert.equal(s.state, { authenticating: 'working' });
  assert.equal(s.steps, [{ n: 1, op: 'start', mechanism: 'SCRAM-SHA-1', payload: 'biwsbj1hbGljZSxyPWFiYw==', secure: false, cb: null, cbRefused: false, host: 'localhost', remote: '127.0.0.1' }]);
  s.sasl({ kind: 'challenge', data: Buffer.from('r=abc') });
  assert.equal(s.toConn(), [{ type: 'write', xml: '<challenge xmlns="urn:xmpp:sasl:2">cj1hYmM=</challenge>' }]);
  s.stanza("<response xmlns='urn:xmpp:sasl:2'>Yz1iaXdz</response>").sasl({ kind: 'success', authcid: 'alice', data: Buffer.from('v=x') });
  assert.is(s.state, 'bindingInline');
  assert.equal(s.toConn(), [{ type: 'authenticated', xml: '', jid: 'alice@localhost', restart: false }]);
  const [bind] = s.toUser();
  assert.match(bind.resource, /^Phone\/[A-Za-z0-9_-]{12}$/);
  assert.is(bind.session, `session:alice@localhost/${bind.resource}`);
  // The same installation asks for the same resource.
  const again = new Stream({ sasl2: true }).header().stanza(AUTHENTICATE).sasl({ kind: 'success', authcid: 'alice' });
  assert.is(again.toUser()[0].resource, bind.resource);

  s.send({ type: 'bind-ok', resource: bind.resource });
  assert.is(s.state, 'established');
  assert.is(s.ctx.jid, `alice@localhost/${bind.resource}`);
  assert.ok(s.ctx.sm);
  assert.equal(s.toConn(), [{ type: 'sm-enable', resume: true, wrap: [
    `<success xmlns="urn:xmpp:sasl:2"><additional-data>dj14</additional-data><authorization-identifier>alice@localhost/${bind.resource}</authorization-identifier><bound xmlns="urn:xmpp:bind:0">`,
    '</bound></success>',
  ] }]);
  assert.equal(s.did.map(([t]) => t), ['toConn', 'writeFeatures', 'moveToJid']);
  assert.is(s.ctx.sasl2, null, 'nothing of the login (a new token) stays in the snapshot');
});

test('SASL2 with XEP-0198 inline: the connection tries the resumption; a failed one is said before the new bind', () => {
  const s = new Stream({ sasl2: true }).header()
    .stanza("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGFsaWNlAHB3</initial-response><resume xmlns='urn:xmpp:sm:3' previd='old' h='7'/><bind xmlns='urn:xmpp:bind:0'/></authenticate>")
    .sasl({ kind: 'success', authcid: 'alice' });
  assert.is(s.state, 'resumingInline');
  assert.equal(s.did.map(([t]) => t).slice(-2), ['toConn', 'resumeInline']);
  assert.equal(s.ctx.sasl2.resume, { previd: 'old', h: 7 });
  s.send({ type: 'resume-failed', xml: '<failed xmlns="urn:xmpp:sm:3"/>' });
  assert.is(s.state, 'bindingInline');
  const resource = s.toUser()[0].resource;
  s.send({ type: 'bind-ok', resource });
  assert.equal(s.toConn(), [{ type: 'write', xml: `<success xmlns="urn:xmpp:sasl:2"><authorization-identifier>alice@localhost/${resource}</authorization-identifier><failed xmlns="urn:xmpp:sm:3"/><bound xmlns="urn:xmpp:bind:0"></bound></success>` }]);
});

test('Bind 2 inline: what it asks of modules goes with the bind request; <inactive/> starts the session inactive (XEP-0352)', () => {
  const s = new Stream({ sasl2: true }).header()
    .stanza("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGFsaWNlAHB3</initial-response><bind xmlns='urn:xmpp:bind:0'><enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/></bind></authenticate>")
    .sasl({ kind: 'success', authcid: 'alice' });
  const [bind] = s.toUser();
  assert.equal(bind.bind2, { inline: ['<enable xmlns="urn:xmpp:carbons:2"/>'] });
  s.send({ type: 'bind-ok', resource: bind.resource, bound: ['<metadata xmlns="urn:xmpp:mam:2"/>'] });
  assert.is(s.ctx.inactive, true);
  assert.match(s.toConn()[0].xml, /<bound xmlns="urn:xmpp:bind:0"><metadata xmlns="urn:xmpp:mam:2"\/><\/bound><\/success>$/, 'what modules answered, in <bound/>');
});

test('SASL2: a failure in its namespace and back to open; without Bind 2, authenticated on the same stream, to bind as usual', () => {
  const s = new Stream({ sasl2: true }).header().stanza(AUTHENTICATE).sasl(wrong());
  assert.is(s.state, 'open');
  assert.equal(s.toConn(), [{ type: 'write', xml: '<failure xmlns="urn:xmpp:sasl:2"><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/></failure>' }]);
  s.stanza("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGFsaWNlAHB3</initial-response></authenticate>").sasl({ kind: 'success', authcid: 'alice' });
  assert.is(s.state, 'binding');
  assert.equal(s.toConn(), [{ type: 'authenticated', xml: '<success xmlns="urn:xmpp:sasl:2"><authorization-identifier>alice@localhost</authorization-identifier></success>', jid: 'alice@localhost', restart: false }]);
  assert.equal(s.did.map(([t]) => t).slice(-2), ['toConn', 'writeFeatures']);
  // Where SASL2 is not offered, <authenticate/> is a stanza the stream does not take.
  const off = new Stream().header().stanza(AUTHENTICATE);
  assert.match(off.closedWith(), /unsupported-stanza-type/);
});

test('before authentication: a stanza is not-authorized; XEP-0198 requests are refused, other nonzas end the stream', () => {
  assert.match(new Stream().header().stanza('<message/>').closedWith(), /not-authorized/);
  const s = new Stream().header().stanza("<enable xmlns='urn:xmpp:sm:3'/>");
  assert.is(s.state, 'open');
  assert.equal(s.toConn(), [{ type: 'write', xml: '<failed xmlns="urn:xmpp:sm:3"><unexpected-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></failed>' }]);
  assert.match(new Stream().header().stanza("<foo xmlns='urn:example'/>").closedWith(), /unsupported-stanza-type.*foo in urn:example/);
});

test('before authentication: an IQ a module takes (XEP-0077) suspends the stream for its answer, which is written; what the module kept stays until the login', () => {
  const iq = "<iq type='set' id='p1'><preauth xmlns='urn:xmpp:pars:0' token='t'/></iq>";
  const s = new Stream({ preauth: true }).header().stanza(iq);
  assert.is(s.state, 'asking');
  assert.equal(s.did, [['preauthIq', { xml: iq }]]);
  s.send({ type: 'runtime.resumed', value: { xml: '<iq type="result" id="p1"/>', kept: { invite: 't' } } });
  assert.is(s.state, 'open');
  assert.equal(s.toConn(), [{ type: 'write', xml: '<iq type="result" id="p1"/>' }]);
  assert.equal(s.ctx.kept, { invite: 't' });
  s.stanza("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>").sasl({ kind: 'success', authcid: 'alice' });
  assert.is(s.ctx.kept, undefined, 'authenticated: nothing of it is kept');
  // An IQ no module takes is a stanza before authentication.
  assert.match(new Stream().header().stanza("<iq type='get' id='v'><query xmlns='jabber:iq:version'/></iq>").closedWith(), /not-authorized/);
});

// ---- bind ----------------------------------------------------------------------------------------

test('bind: the request goes to the user actor; bind-ok answers, moves the session and opens it', () => {
  const s = new Stream().authenticated().stanza("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>", 3);
  assert.is(s.state, 'binding');
  assert.equal(s.toUser(), [{ type: 'bind', resource: 'phone', session: 'session:alice@localhost/phone' }]);
  assert.equal(s.did.slice(1), [['handled', { seq: 3 }]]);
  s.send({ type: 'bind-ok', resource: 'phone' });
  assert.is(s.state, 'established');
  assert.is(s.ctx.jid, 'alice@localhost/phone');
  assert.equal(s.did, [
    ['toConn', { type: 'write', xml: '<iq type="result" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><jid>alice@localhost/phone</jid></bind></iq>' }],
    ['moveToJid', undefined],
  ]);
  // The connection and the user actor watch it: their monitors follow the move (no message of ours).
  s.send({ type: 'runtime.moved' });
  assert.equal(s.did, []);
});

test('bind: a server-chosen resource; a refused bind; an invalid resource; other IQs answered one at a time', () => {
  const s = new Stream().authenticated().stanza("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
  assert.ok(s.toUser()[0].resource.length >= 8);
  s.send({ type: 'bind-denied', condition: 'resource-constraint', text: 'too many' });
  assert.is(s.state, 'binding');
  assert.match(s.toConn()[0].xml, /^<iq type="error" id="b1"><error type="wait"><resource-constraint /);
  assert.is(s.toConn()[0].type, 'bind-failed');
  const t = new Stream().authenticated().stanza(`<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${'r'.repeat(1100)}</resource></bind></iq>`);
  assert.equal(t.did.map(([type]) => type), ['toConn', 'toConn', 'handled']);
  assert.match(t.toConn()[0].xml, /bad-request/);
  const p = new Stream().authenticated().stanza("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>", 2);
  assert.equal(p.did.map(([type, params]) => (type === 'toConn' ? (params as { type: string }).type : type)), ['write', 'next', 'handled']);
  assert.match(p.toConn()[0].xml, /<not-allowed /);
  assert.match(new Stream().authenticated().stanza('<message><body>hi</body></message>').closedWith(), /not-authorized.*bind a resource first/);
});

test('bind stage XEP-0198: <resume/> goes to the connection; <enable/> is refused and the next stanza may come', () => {
  const s = new Stream().authenticated().stanza("<resume xmlns='urn:xmpp:sm:3' previd='abc' h='4'/>");
  assert.equal(s.toConn(), [{ type: 'sm-resume', previd: 'abc', h: 4 }]);
  s.stanza("<enable xmlns='urn:xmpp:sm:3'/>");
  assert.equal(s.toConn().map((m) => m.type), ['write', 'next']);
});

// ---- established ---------------------------------------------------------------------------------

test('established: a stanza is stamped with the full JID and goes to the user actor; the snapshot does not change', () => {
  const s = new Stream().bound();
  const before = s.snap.context;
  s.stanza("<message to='bob@localhost' type='chat'><body>hi</body></message>", 7);
  const [m] = s.toUser();
  assert.is(m.type, 'client');
  assert.is(m.h.from, 'alice@localhost/phone');
  assert.match(m.xml, /from="alice@localhost\/phone"/);
  assert.equal([m.resource, m.conn, m.seq], ['phone', 'conn:b.1', 7]);
  assert.is(s.snap.context, before);
});

test("established: the stream's own checks (RFC 6120 §8.1)", () => {
  assert.match(new Stream().bound().stanza("<message from='mallory@localhost'/>").closedWith(), /invalid-from/);
  assert.match(new Stream().bound().stanza("<foo xmlns='jabber:client'/>").closedWith(), /unsupported-stanza-type/);
  const s = new Stream().bound().stanza("<message to='a@b@c' id='m'/>", 5);
  assert.is(s.state, 'established');
  assert.equal(s.did.map(([type, params]) => (type === 'toConn' ? (params as { type: string }).type : type)), ['deliver', 'handled']);
  assert.match(s.toConn()[0].xml, /jid-malformed/);
  assert.match(new Stream().bound().stanza("<iq type='get'/>").toConn()[0].xml, /bad-request/);
  // from: our bare JID is fine
  assert.equal(new Stream().bound().stanza("<presence from='alice@localhost'/>").toUser().length, 1);
});

test('XEP-0352: inactive holds what can wait; active flushes', () => {
  const s = new Stream().bound().stanza("<inactive xmlns='urn:xmpp:csi:0'/>");
  assert.is(s.ctx.inactive, true);
  s.send({ type: 'deliver', xml: "<presence from='bob@localhost/x'/>" });
  assert.equal(s.did, [['deliver', { xml: "<presence from='bob@localhost/x'/>", receipt: undefined, sent: undefined, hold: true }]]);
  s.send({ type: 'deliver', xml: '<message><body>now</body></message>' });
  assert.is(s.did[0]![1] && (s.did[0]![1] as { hold: boolean }).hold, false);
  s.stanza("<active xmlns='urn:xmpp:csi:0'/>");
  assert.is(s.ctx.inactive, false);
  assert.equal(s.toConn(), [{ type: 'flush' }]);
});

test('XEP-0198 after bind: <enable/> once (resume as asked), then refused; anything else of it is not implemented', () => {
  const s = new Stream().bound().stanza("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
  assert.equal(s.toConn(), [{ type: 'sm-enable', resume: true }]);
  assert.is(s.ctx.sm, true);
  s.stanza("<enable xmlns='urn:xmpp:sm:3'/>");
  assert.match(s.toConn()[0].xml, /unexpected-request/);
  s.stanza("<foo xmlns='urn:xmpp:sm:3'/>");
  assert.match(s.toConn()[0].xml, /feature-not-implemented/);
});

test('a replaced or kicked session ends with its stream error; a detached one waits and can come back', () => {
  assert.match(new Stream().bound().send({ type: 'replace' }).closedWith(), /conflict/);
  assert.match(new Stream().bound().send({ type: 'kick', condition: 'not-authorized', text: 'account deleted' }).closedWith(), /not-authorized.*account deleted/);
  const s = new Stream().bound().send({ type: 'detached' });
  assert.is(s.state, 'resumable');
  assert.equal(s.toUser(), [{ type: 'detached', resource: 'phone' }]);
  s.send({ type: 'resumed', conn: 'conn:b.2' });
  assert.is(s.state, 'established');
  assert.equal(s.toUser(), [{ type: 'attached', resource: 'phone' }]);
});

// ---- leaving ---------------------------------------------------------------------------------------

test('leaving: what the client never got goes back to the user actor; done once the user actor and the connection are through', () => {
  const s = new Stream().bound().send({ type: 'end' });
  assert.is(s.state, 'closing');
  s.send({ type: 'closed', reason: 'end', unacked: [{ xml: '<message/>' }] });
  assert.is(s.state, 'unbinding');
  assert.equal(s.did, [['bounce', [{ xml: '<message/>' }]], ['toUser', { type: 'unbind', resource: 'phone' }], ['toConn', { type: 'drain' }]]);
  s.send({ type: 'unbound' });
  assert.is(s.state, 'unbinding');
  s.send({ type: 'drained' });
  assert.is(s.state, 'done');
  // Never bound: nothing to wait for.
  assert.is(new Stream().header().send({ type: 'closed', reason: 'gone', unacked: [] }).state, 'done');
});

test('restored: after a node restart the session leaves; after a crash the connection replays and the user actor watches again', () => {
  const gone = new Stream({ gone: true }).bound().send({ type: 'runtime.restored', reason: 'boot' });
  assert.is(gone.state, 'unbinding');
  assert.equal(gone.toConn(), [], 'no drain: the connection is gone');
  assert.equal(gone.toUser(), [{ type: 'unbind', resource: 'phone' }]);
  const crashed = new Stream().bound().send({ type: 'runtime.restored', reason: 'crash' });
  assert.is(crashed.state, 'established');
  assert.equal(crashed.did, [['toConn', { type: 'replay' }], ['toUser', { type: 'arrived', resource: 'phone' }]]);
});

test('a v1 snapshot (a node upgraded under live sessions) migrates: its state and context carry on', () => {
  const v2 = new Stream().bound();
  const persisted = sessionMachine.getPersistedSnapshot(v2.snap) as Record<string, any>;
  const { mechanism: _m, bindResource: _b, ...v1context } = persisted.context;
  for (const [value, expected] of [['established', 'established'], ['authenticating', { authenticating: 'waiting' }]] as const) {
    const migrated = session.migrate!({ ...persisted, value, context: { ...v1context, next: 'stay' } }, 1) as Record<string, any>;
    const snap = v2.m.resolveState({ value: migrated.value, context: migrated.context });
    assert.equal(snap.value, expected);
    assert.is(snap.context.jid, 'alice@localhost/phone');
    assert.is(snap.context.mechanism, '');
    assert.not.ok('next' in snap.context);
  }
});

test.run();
