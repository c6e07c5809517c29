// The inbound server stream's machine, transition by transition (xstate's transition(): no thread, no
// socket): what it tells the connection for each event. The same over a real socket: stream.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initialTransition, transition, type AnyMachineSnapshot } from 'xstate';
import { s2sInMachine, type S2sInEvent } from '../../actors/s2sin/machine.ts';
import { feed, HEADER } from '../helpers/framer.ts';

const m = s2sInMachine.provide({ guards: {
  servedHost: ({ event }) => (event as { to?: string }).to === 'localhost',
  domainsOk: ({ event }) => (event as { h: { to: string } }).h.to === 'localhost',
  notForUs: ({ event }) => !/(^|@)localhost(\/|$)/.test((event as { h: { to: string } }).h.to ?? ''),
} });
const INFO = { conn: 'conn:b.1', remote: '192.0.2.1', secure: false, directTls: false, host: null, cb: null };

class Stream {
  snap: AnyMachineSnapshot;
  actions: Array<{ type: string; params?: any }> = [];
  constructor() { [this.snap] = initialTransition(m, INFO); }
  send(e: S2sInEvent | { type: string; [k: string]: unknown }): this {
    const [snap, actions] = transition(m, this.snap, e as S2sInEvent);
    this.snap = snap;
    this.actions = actions as typeof this.actions;
    return this;
  }
  header(o: { to?: string; xmlns?: string; version?: string } = {}): this {
    return this.send({ type: 'header', to: o.to ?? 'localhost', from: 'other.example', version: o.version ?? '1.0', lang: null, xmlns: o.xmlns ?? 'jabber:server' });
  }
  stanza(xml: string): this {
    const ev = feed(HEADER + xml).events.find((e) => e.t === 'stanza') as { xml: string; h: any };
    return this.send({ type: 'stanza', xml: ev.xml, h: ev.h, seq: 0 });
  }
  get conn(): any[] { return this.actions.filter((a) => a.type === 'toConn').map((a) => a.params); }
  get state(): unknown { return this.snap.value; }
}

test('header → open with STARTTLS offered; starttls → securing; tls → opening; the new header offers dialback and stream management', () => {
  const s = new Stream().header();
  assert.is(s.state, 'open');
  assert.match(s.conn[0].xml, /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/>/);
  assert.equal(s.snap.context.peer, 'other.example');
  s.stanza("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  assert.is(s.state, 'securing');
  assert.equal(s.conn, [{ type: 'starttls', xml: '<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>' }]);
  s.send({ type: 'tls', host: 'localhost', cb: {} });
  assert.is(s.state, 'opening');
  s.header();
  assert.match(s.conn[0].xml, /<stream:features><dialback xmlns="urn:xmpp:features:dialback"><errors\/><\/dialback><sm xmlns="urn:xmpp:sm:3"><optional\/><\/sm><\/stream:features>/);
  // XEP-0198 without resumption, once; Prosody enables it before authenticating.
  s.stanza("<enable xmlns='urn:xmpp:sm:3'/>");
  assert.equal(s.conn, [{ type: 'sm-enable', resume: false }]);
  assert.ok(s.snap.context.sm);
  s.stanza("<enable xmlns='urn:xmpp:sm:3'/>");
  assert.match(s.conn[0].xml, /<failed xmlns="urn:xmpp:sm:3"><unexpected-request/);
  assert.is(s.state, 'open');
});

test('dialback: a key from the peer is sent to our link for checking; a valid answer admits that pair of domains and its stanzas, an invalid one does not', () => {
  const s = new Stream().header().stanza("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").send({ type: 'tls', host: 'localhost', cb: {} }).header();
  s.stanza("<db:result xmlns:db='jabber:server:dialback' from='other.example' to='localhost'>k3y</db:result>");
  assert.equal(s.actions.map((a) => a.type), ['askVerify'], 'asked of the link, nothing said yet');
  const id = s.snap.context.streamId;
  s.send({ type: 'verified', id, host: 'localhost', peer: 'other.example', valid: false });
  assert.equal(s.snap.context.authenticated, []);
  s.send({ type: 'verified', id, host: 'localhost', peer: 'other.example', valid: true });
  assert.equal(s.snap.context.authenticated, ['other.example|localhost']);
  s.stanza("<message from='romeo@other.example' to='juliet@localhost'><body>hi</body></message>");
  assert.equal(s.actions.map((a) => a.type), ['routeIn']);
  s.stanza("<message from='romeo@third.example' to='juliet@localhost'><body>hi</body></message>");
  assert.is(s.state, 'closing');
  assert.match(s.conn[0].xml, /<invalid-from /, 'a domain pair not authenticated on this stream');
});

test('on an authenticated stream: a stanza without from or to is improper-addressing; one for a domain not served here is host-unknown', () => {
  const admitted = () => {
    const s = new Stream().header().stanza("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").send({ type: 'tls', host: 'localhost', cb: {} }).header();
    s.stanza("<db:result xmlns:db='jabber:server:dialback' from='other.example' to='localhost'>k3y</db:result>");
    return s.send({ type: 'verified', id: s.snap.context.streamId, host: 'localhost', peer: 'other.example', valid: true });
  };
  for (const [xml, condition] of [
    ["<message to='juliet@localhost'><body>hi</body></message>", 'improper-addressing'],
    ["<iq type='get' from='romeo@other.example' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", 'improper-addressing'],
    ["<message from='romeo@other.example' to='juliet@elsewhere.example'><body>hi</body></message>", 'host-unknown'],
  ] as const) {
    const s = admitted().stanza(xml);
    assert.is(s.state, 'closing', xml);
    assert.match(s.conn[0].xml, new RegExp(`<${condition} `), xml);
  }
});

test('bad headers close with their stream error and our header first; a changed host after TLS too', () => {
  for (const [o, condition] of [[{ xmlns: 'jabber:client' }, 'invalid-namespace'], [{ to: 'other.example' }, 'host-unknown'], [{ version: '0.9' }, 'unsupported-version']] as const) {
    const s = new Stream().header(o);
    assert.is(s.state, 'closing');
    assert.match(s.conn[0].xml, new RegExp(`^<\\?xml.*<stream:stream xmlns="jabber:server".*<${condition} `));
  }
  const s = new Stream().header().stanza("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").send({ type: 'tls', host: 'localhost', cb: {} });
  s.header({ to: 'localhost' });
  assert.is(s.state, 'open');
});

test('the end of the stream is answered and the actor ends when the socket has closed', () => {
  const s = new Stream().header().send({ type: 'end' });
  assert.is(s.state, 'closing');
  assert.equal(s.conn, [{ type: 'close', xml: '</stream:stream>' }]);
  s.send({ type: 'closed', reason: 'eof', unacked: [] });
  assert.is(s.snap.status, 'done');
});

test.run();
