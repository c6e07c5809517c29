// XMPP over BOSH (XEP-0124, XEP-0206) on the HTTP listeners, as raw HTTP: a session is created,
// logs in (SASL, restart, bind) and chats with a TCP client through held requests; a lost response
// is asked again by rid; terminate ends the session; bad requests get XEP-0124's terminal conditions.
// (Converse.js logs in over BOSH in a real browser: test/clients/converse.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bodies, freePort, friendsServer, OPEN, securedStream, type TestServer } from '../helpers/xmpp.ts';
import { until } from '../helpers/runtime.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the TCP client: the self-signed certificate
const HTTPBIND = 'http://jabber.org/protocol/httpbind';
const XBOSH = 'urn:xmpp:xbosh';

let server: TestServer;
let url: string;
test.before(async () => {
  const http = await freePort();
  server = await friendsServer((c) => { c.listen.http = http; c.limits.bosh_inactivity_seconds = 3; });
  url = `http://127.0.0.1:${http}/http-bind`;
});
test.after(async () => { await server.stop(); });

async function post(text: string): Promise<{ status: number; text: string; body: XmlElement }> {
  const r = await fetch(url, { method: 'POST', body: text, headers: { 'Content-Type': 'text/xml; charset=utf-8' } });
  const got = await r.text();
  return { status: r.status, text: got, body: parseElement(got, HTTPBIND) };
}

/** A BOSH client by hand: the next rid each time, the session's sid once known. */
class Bosh {
  sid = '';
  constructor(public rid: number) {}
  send(inner = '', attrs = ''): Promise<{ status: number; text: string; body: XmlElement }> {
    return post(`<body xmlns='${HTTPBIND}' rid='${this.rid++}' sid='${this.sid}'${attrs}>${inner}</body>`);
  }
}

const plainAuth = (user: string) => Buffer.from(`\0${user}\0pw`).toString('base64');

/** A session through creation, SASL PLAIN, restart and bind. */
async function loggedIn(user: string, resource: string): Promise<Bosh> {
  const b = new Bosh(1000 + Math.floor(Math.random() * 1e6));
  const created = await post(`<body xmlns='${HTTPBIND}' xmlns:xmpp='${XBOSH}' rid='${b.rid++}' to='localhost' xml:lang='en' wait='10' hold='1' ver='1.11' xmpp:version='1.0'/>`);
  b.sid = created.body.attr('sid')!;
  const success = await b.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plainAuth(user)}</auth>`);
  assert.ok(success.body.child('success', 'urn:ietf:params:xml:ns:xmpp-sasl'), success.text);
  const restarted = await b.send('', ` xmlns:xmpp='${XBOSH}' xmpp:restart='true' to='localhost'`);
  assert.ok(restarted.body.child('features', 'http://etherx.jabber.org/streams')?.child('bind', 'urn:ietf:params:xml:ns:xmpp-bind'), restarted.text);
  const bound = await b.send(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  assert.is(bound.body.child('iq')?.child('bind', 'urn:ietf:params:xml:ns:xmpp-bind')?.child('jid')?.text(), `${user}@localhost/${resource}`, bound.text);
  return b;
}

test('a session is created with XEP-0124/0206 attributes and the stream features; it logs in and chats with a TCP client through held requests', async () => {
  const created = await post(`<body xmlns='${HTTPBIND}' xmlns:xmpp='${XBOSH}' rid='42' to='localhost' xml:lang='en' wait='30' hold='1' ver='1.11' xmpp:version='1.0'/>`);
  const b = created.body;
  assert.is(created.status, 200);
  assert.match(b.attr('sid') ?? '', /^[0-9a-f]{32}$/);
  assert.equal([b.attr('wait'), b.attr('hold'), b.attr('requests'), b.attr('ver'), b.attr('from'), b.attr('xmpp:version'), b.attr('xmpp:restartlogic')], ['30', '1', '2', '1.11', 'localhost', '1.0', 'true']);
  assert.ok(b.attr('authid'), 'the stream id');
  const mechs = b.child('features', 'http://etherx.jabber.org/streams')?.child('mechanisms', 'urn:ietf:params:xml:ns:xmpp-sasl')?.children.map((m) => (m as XmlElement).text());
  assert.ok(mechs?.includes('PLAIN'), created.text);

  const alice = await loggedIn('alice', 'bosh');
  const bob = await login(server.port, 'bob', { password: 'pw', presence: true, resource: 'tcp' });
  try {
    // Presence goes in; the held poll brings bob's presence back, then his message.
    await alice.send(`<presence xmlns='jabber:client'/>`);
    const poll = alice.send();
    await bob.c.send(xml('message', { to: 'alice@localhost/bosh', type: 'chat' }, xml('body', {}, 'to the web')));
    let got = await poll;
    while (!got.body.children.some((c) => (c as XmlElement).name === 'message')) got = await alice.send();
    const msg = got.body.children.find((c) => (c as XmlElement).name === 'message') as XmlElement;
    assert.is(msg.child('body')?.text(), 'to the web');
    assert.is(msg.getXmlns(), 'jabber:client', 'stanzas carry their namespace inside <body/>');
    // This request is held (nothing for alice yet) until the next one frees it: hold is 1.
    const held = alice.send(`<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>from the web</body></message>`);
    await bob.next(isMessage('from the web'));
    // Terminate: its unavailable presence goes in, bob sees it; the sid is gone afterwards.
    const end = await alice.send(`<presence xmlns='jabber:client' type='unavailable'/>`, ` type='terminate'`);
    assert.is(end.body.attr('type'), 'terminate');
    assert.is((await held).status, 200);
    await bob.next((s) => s.is('presence') && s.attrs.type === 'unavailable' && String(s.attrs.from) === 'alice@localhost/bosh');
  } finally {
    await bob.c.stop();
  }
  const after = await alice.send();
  assert.equal([after.body.attr('type'), after.body.attr('condition')], ['terminate', 'item-not-found']);
});

test('a request asked again with a rid already answered gets the same answer; a rid outside the window ends with item-not-found', async () => {
  const b = await loggedIn('alice', 'again');
  const first = await b.send(`<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  assert.ok(first.body.child('iq'), first.text);
  b.rid--;
  const again = await b.send(`<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  assert.is(again.text, first.text);
  b.rid += 5;
  const far = await b.send();
  assert.equal([far.body.attr('type'), far.body.attr('condition')], ['terminate', 'item-not-found']);
});

test('requests that arrive out of order are taken in rid order', async () => {
  const b = await loggedIn('alice', 'order');
  const rid = b.rid;
  b.rid = rid + 1;
  const later = b.send(`<iq xmlns='jabber:client' type='get' id='second' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  b.rid = rid;
  const earlier = b.send(`<iq xmlns='jabber:client' type='get' id='first' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  const ids = (await Promise.all([earlier, later])).flatMap((r) => r.body.children.map((c) => (c as XmlElement).attr('id')));
  assert.equal(ids.filter(Boolean), ['first', 'second']);
});

test('bad requests: malformed XML and a missing to are bad-request, an unknown sid item-not-found; a stream error comes inside a terminate body', async () => {
  const bad = await post('<body xmlns');
  assert.equal([bad.body.attr('type'), bad.body.attr('condition')], ['terminate', 'bad-request']);
  const noTo = await post(`<body xmlns='${HTTPBIND}' rid='1' wait='5' hold='1'/>`);
  assert.is(noTo.body.attr('condition'), 'bad-request');
  const unknown = await post(`<body xmlns='${HTTPBIND}' rid='2' sid='00000000000000000000000000000000'/>`);
  assert.is(unknown.body.attr('condition'), 'item-not-found');
  const wrongHost = await post(`<body xmlns='${HTTPBIND}' xmlns:xmpp='${XBOSH}' rid='7' to='elsewhere.example' wait='5' hold='1' xmpp:version='1.0'/>`);
  assert.equal([wrongHost.body.attr('type'), wrongHost.body.attr('condition')], ['terminate', 'remote-stream-error'], wrongHost.text);
  assert.ok(wrongHost.body.child('error', 'http://etherx.jabber.org/streams')?.child('host-unknown', 'urn:ietf:params:xml:ns:xmpp-streams'), wrongHost.text);
  const options = await fetch(url, { method: 'OPTIONS' });
  assert.is(options.status, 204);
  assert.is(options.headers.get('access-control-allow-origin'), '*');
});

test('a BOSH session with stream management that nobody asks for is detached, and a TCP stream resumes it: what it had not acked comes again', async () => {
  const SM = 'urn:xmpp:sm:3';
  const b = await loggedIn('alice', 'sm');
  const enabled = await b.send(`<enable xmlns='${SM}' resume='true'/>`);
  const previd = enabled.body.child('enabled', SM)?.attr('id');
  assert.ok(previd, enabled.text);
  const bob = await login(server.port, 'bob', { password: 'pw', presence: true, resource: 'sm-peer' });
  try {
    const poll = b.send();
    await bob.c.send(xml('message', { to: 'alice@localhost/sm', type: 'chat' }, xml('body', {}, 'while-here')));
    let got = await poll;
    while (!got.text.includes('while-here')) got = await b.send();
    // The client goes away without acking; after limits.bosh_inactivity_seconds the session waits.
    await until(() => server.logs.some((l) => /its session waits \d+ s for a resumption/.test(l)), 15_000, 'the detach line');
    await bob.c.send(xml('message', { to: 'alice@localhost/sm', type: 'chat' }, xml('body', {}, 'while-away')));
    const c = await securedStream(server.port);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plainAuth('alice')}</auth>`);
    await c.next(/<success/);
    c.send(OPEN);
    await c.next(/<sm xmlns/);
    c.send(`<resume xmlns='${SM}' previd='${previd}' h='0'/>`);
    await c.next(/<resumed[^>]*previd=/);
    await c.next(/while-away/);
    assert.equal(bodies(c.received), ['while-here', 'while-away']);
    c.close();
  } finally {
    await bob.c.stop();
  }
});

test('XEP-0156: host-meta names the BOSH endpoint beside the WebSocket one', async () => {
  const json = await (await fetch(url.replace('/http-bind', '/.well-known/host-meta.json'))).json() as { links: Array<{ rel: string; href: string }> };
  assert.ok(json.links.some((l) => l.rel === 'urn:xmpp:alt-connections:xbosh' && l.href === url), JSON.stringify(json));
});

test.run();
