// The outbound link's machine (actors/s2s), transition by transition (xstate's transition(): no
// thread, no socket): connect, STARTTLS as the client, dialback, up; retries, then a bounce. The same
// over real sockets between two nodes: federation.test.ts; with Prosody: prosody.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assign, initialTransition, transition, type AnyMachineSnapshot } from 'xstate';
import { BACKOFF_MS, linkMachine, type LinkEvent } from '../../actors/s2s/machine.ts';
import { feed, HEADER } from '../helpers/framer.ts';

// What reads the runtime (the sender of an event, the durable message's id) is given here.
const policy = { secureAuth: false };
const m = linkMachine.provide({
  guards: { current: ({ context }) => context.conn !== null, secureAuth: () => policy.secureAuth },
  actions: { enqueue: assign({ queue: ({ context, event }) => [...context.queue, { xml: (event as { xml: string }).xml }] }) },
});

class Link {
  snap: AnyMachineSnapshot;
  actions: Array<{ type: string; params?: any }> = [];
  constructor() { [this.snap] = initialTransition(m, { local: 'a.example', remote: 'b.example' }); }
  send(e: LinkEvent | { type: string; [k: string]: unknown }): this {
    const [snap, actions] = transition(m, this.snap, e as LinkEvent);
    this.snap = snap;
    this.actions = actions as typeof this.actions;
    return this;
  }
  stanza(xml: string): this {
    const ev = feed(HEADER + xml).events.find((e) => e.t === 'stanza') as { xml: string; h: any };
    return this.send({ type: 'stanza', xml: ev.xml, h: ev.h, seq: 0 });
  }
  /** The effects a transition asks for (transition() applies the assigns itself). */
  get names(): string[] { return this.actions.map((a) => a.type); }
  get state(): unknown { return this.snap.value; }
}

const out = (body: string) => ({ type: 'out', xml: `<message to="bob@b.example" from="alice@a.example/x"><body>${body}</body></message>`, h: {} });
const header = { type: 'header', to: 'a.example', from: 'b.example', version: '1.0', lang: null, xmlns: 'jabber:server', id: 'peer-stream-1', db: true };
const CONNECTED = { type: 'connected', conn: 'conn:x.1', remote: '192.0.2.1', secure: false, directTls: false, host: null, cb: null };

test('a first stanza dials; the stream goes TLS then dialback; a valid result is up and writes what waited', () => {
  const l = new Link().send(out('one'));
  assert.is(l.state, 'connecting');
  assert.equal(l.names, ['retain', 'dial']);
  l.send(out('two'));
  assert.equal(l.snap.context.queue.length, 2);
  l.send(CONNECTED);
  assert.is(l.state, 'opening');
  assert.equal(l.names, ['writeHeader']);
  l.send(header).stanza("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>");
  assert.is(l.state, 'securing');
  l.stanza("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  assert.is(l.state, 'tls');
  assert.equal(l.actions[0]!.params, { type: 'starttls', xml: '', servername: 'b.example', local: 'a.example' });
  l.send({ type: 'tls', host: 'b.example', cb: {}, peer: { authorized: false, error: 'DEPTH_ZERO_SELF_SIGNED_CERT', names: ['b.example'] } });
  assert.is(l.state, 'opening');
  l.send(header).stanza("<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>");
  assert.is(l.state, 'authenticating');
  assert.equal(l.names, ['writeVerifies', 'sendResult']);
  l.stanza("<db:result xmlns:db='jabber:server:dialback' from='b.example' to='a.example' type='valid'/>");
  assert.is(l.state, 'up');
  assert.equal(l.names, ['authenticated', 'writeQueue', 'logUp']);
  assert.equal(l.snap.context.queue, []);
  l.send(out('three'));
  assert.equal(l.names, ['deliver'], 'up: straight to the connection');
});

test('XEP-0198 where the peer offers it: after authentication <enable/>, what waits is held until <enabled/>, then the engine keeps each stanza until acknowledged', () => {
  const l = new Link().send(out('one')).send(CONNECTED).send(header)
    .stanza("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>").stanza("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    .send({ type: 'tls', host: 'b.example', cb: {} }).send(header)
    .stanza("<stream:features><dialback xmlns='urn:xmpp:features:dialback'/><sm xmlns='urn:xmpp:sm:3'><optional/></sm></stream:features>")
    .stanza("<db:result xmlns:db='jabber:server:dialback' from='b.example' to='a.example' type='valid'/>");
  assert.is(l.state, 'enabling');
  assert.equal(l.names, ['authenticated', 'writeEnable']);
  l.send(out('two'));
  assert.equal(l.snap.context.queue.length, 2, 'held: the peer counts from its <enable/>');
  l.stanza("<enabled xmlns='urn:xmpp:sm:3'/>");
  assert.is(l.state, 'up');
  assert.equal(l.names, ['engineSm', 'writeQueue', 'logUp']);
  assert.is(l.snap.context.sm, 'on');
  // A peer that refuses: up all the same, stanzas released once written.
  const f = new Link().send(out('x')).send({ ...CONNECTED, secure: true, directTls: true }).send(header)
    .stanza("<stream:features><dialback xmlns='urn:xmpp:features:dialback'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>");
  assert.is(f.state, 'authenticating', 'Direct TLS: secure from the first byte, no STARTTLS asked');
  f.stanza("<db:result xmlns:db='jabber:server:dialback' from='b.example' to='a.example' type='valid'/>").stanza("<failed xmlns='urn:xmpp:sm:3'/>");
  assert.is(f.state, 'up');
  assert.is(f.snap.context.sm, 'no');
});

test('without TLS offered the link does not go on; a refused key closes it', () => {
  const l = new Link().send(out('x')).send(CONNECTED).send(header).stanza('<stream:features/>');
  assert.is(l.state, 'closing');
  assert.match(l.actions[0]!.params.xml, /<policy-violation /);
  const r = new Link().send(out('x')).send(CONNECTED).send(header)
    .stanza("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>").stanza("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    .send({ type: 'tls', host: 'b.example', cb: {} }).send(header).stanza("<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>")
    .stanza("<db:result xmlns:db='jabber:server:dialback' from='b.example' to='a.example' type='invalid'/>");
  assert.is(r.state, 'closing');
});

const secured = (cert: { authorized: boolean; names: string[] }) => new Link().send(out('x')).send(CONNECTED).send(header)
  .stanza("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>").stanza("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
  .send({ type: 'tls', host: 'b.example', cb: {}, peer: cert }).send(header);
const BOTH = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>";

test('SASL EXTERNAL where the peer offers it (XEP-0178): success restarts the stream and the link is up; a failure falls back to dialback', () => {
  const l = secured({ authorized: true, names: ['b.example'] }).stanza(BOTH);
  assert.is(l.state, 'sasl');
  assert.equal(l.names, ['writeAuth']);
  l.stanza("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
  assert.is(l.state, 'opening');
  assert.equal(l.names, ['restart']);
  l.send(header).stanza('<stream:features/>');
  assert.is(l.state, 'up');
  assert.equal(l.names, ['writeVerifies', 'writeQueue', 'logUp']);
  const f = secured({ authorized: true, names: ['b.example'] }).stanza(BOTH).stanza("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
  assert.is(f.state, 'authenticating');
  assert.equal(f.names, ['writeVerifies', 'sendResult']);
});

test('with s2s.secure_auth, a peer whose certificate does not prove its domain gets no link', () => {
  policy.secureAuth = true;
  try {
    const bad = secured({ authorized: true, names: ['other.example'] }).stanza(BOTH);
    assert.is(bad.state, 'closing');
    assert.match(bad.actions[1]!.params.xml, /<policy-violation .*does not prove b\.example \(names: other\.example\)/);
    const wild = secured({ authorized: true, names: ['*.example'] }).stanza(BOTH);
    assert.is(wild.state, 'sasl', 'a wildcard covers one label');
    const untrusted = secured({ authorized: false, names: ['b.example'] }).stanza(BOTH);
    assert.is(untrusted.state, 'closing');
  } finally { policy.secureAuth = false; }
});

test(`a server that cannot be reached is tried ${BACKOFF_MS.length + 1} times, then what waited is bounced`, () => {
  const l = new Link().send(out('x'));
  for (let i = 0; i < BACKOFF_MS.length; i++) {
    l.send({ type: 'dial-failed', reason: 'refused' });
    assert.is(l.state, 'backoff');
    assert.equal(l.names, ['wait']);
    l.send({ type: 'retry' });
    assert.is(l.state, 'connecting');
  }
  l.send({ type: 'dial-failed', reason: 'refused' });
  assert.is(l.state, 'finished');
  assert.is(l.snap.status, 'done', 'the actor ends; the next stanza starts it again');
  assert.equal(l.names, ['bounceQueue']);
  assert.equal(l.snap.context.queue, []);
});

test('a lost connection hands back what it had not written; with work left the link tries again', () => {
  const l = new Link().send(out('x')).send(CONNECTED);
  l.send({ type: 'closed', reason: 'connection lost', unacked: [{ xml: '<message/>' }] });
  assert.is(l.state, 'backoff');
  assert.equal(l.snap.context.queue.map((q: { xml: string }) => q.xml), ['<message/>', out('x').xml]);
});

test('what the connection of an earlier life of the link never wrote starts it again', () => {
  const l = new Link().send({ type: 'closed', reason: 'connection lost', unacked: [{ xml: '<message/>' }] });
  assert.is(l.state, 'connecting');
  assert.equal(l.names, ['dial']);
  assert.is(new Link().send({ type: 'closed', reason: 'connection lost', unacked: [] }).state, 'idle');
});

test.run();
