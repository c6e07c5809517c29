// XMPP over WebSocket (RFC 7395) on the HTTP listeners: a web client's session is the same session
// actor as a TCP client's. xmpp.js logs in over ws:// and wss:// and chats with a TCP client; raw
// frames show the framing (<open/>, one element per frame, <close/>); XEP-0156 host-meta says where.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { once } from 'node:events';
import { freePort, friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { frameOf, OutboundPieces, inboundText } from '../../src/net/websocket.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
// xmpp.js's WebSocket transport uses the global WebSocket, which Node 20 does not have.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

let server: TestServer;
let http: number, https: number;
test.before(async () => {
  http = await freePort();
  https = await freePort();
  server = await friendsServer((c) => { c.listen.http = http; c.listen.https = https; });
});
test.after(async () => { await server.stop(); });

for (const scheme of ['ws', 'wss'] as const) {
  test(`xmpp.js over ${scheme}:// logs in (SCRAM) and chats with a TCP client`, async () => {
    const port = scheme === 'ws' ? http : https;
    const alice = await login(0, 'alice', { password: 'pw', presence: true, service: `${scheme}://127.0.0.1:${port}/xmpp-websocket`, resource: scheme });
    const bob = await login(server.port, 'bob', { password: 'pw', presence: true, resource: `tcp-${scheme}` });
    try {
      await alice.c.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, `from the web (${scheme})`)));
      await bob.next(isMessage(`from the web (${scheme})`));
      await bob.c.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'to the web')));
      await alice.next(isMessage('to the web'));
    } finally {
      await alice.c.stop();
      await bob.c.stop();
    }
  });
}

/** A raw WebSocket client: frames as they come. */
async function rawSocket(protocols: string[] = ['xmpp']): Promise<{ ws: WebSocket; frames: string[]; closed: Promise<unknown>; next(re: RegExp): Promise<string> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${http}/xmpp-websocket`, protocols);
  const frames: string[] = [];
  let seen = 0;
  ws.on('message', (d) => frames.push(d.toString()));
  const closed = once(ws, 'close');
  await once(ws, 'open');
  return {
    ws, frames, closed,
    next: async (re) => {
      for (let waited = 0; waited < 5000; waited += 10) {
        const i = frames.findIndex((f, k) => k >= seen && re.test(f));
        if (i >= 0) { seen = i + 1; return frames[i]!; }
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no frame ${re}; got ${frames.join(' | ')}`);
    },
  };
}

test('raw frames: <open/> is answered <open/>, the features come as a frame of their own with the stream prefix declared, <close/> with <close/>', async () => {
  const c = await rawSocket();
  c.ws.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
  const open = await c.next(/^<open /);
  assert.match(open, /^<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="localhost" id="[^"]+" version="1.0"( xml:lang="en")?\/>$/);
  const features = await c.next(/^<stream:features/);
  assert.match(features, /^<stream:features xmlns:stream="http:\/\/etherx.jabber.org\/streams">/);
  assert.match(features, /SCRAM-SHA-256/);
  assert.not.match(features, /starttls/, 'no STARTTLS inside a WebSocket');
  c.ws.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
  await c.next(/^<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"\/>$/);
  await c.closed;
});

test('a WebSocket without the xmpp subprotocol is refused; bad XML ends the stream with a stream error frame', async () => {
  const refused = new WebSocket(`ws://127.0.0.1:${http}/xmpp-websocket`, ['chat']);
  const [err] = await once(refused, 'error') as [Error];
  assert.match(err.message, /400/);
  const c = await rawSocket();
  c.ws.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
  await c.next(/^<stream:features/);
  c.ws.send('<message><body>unclosed');
  c.ws.send('</nope>');
  await c.next(/^<stream:error xmlns:stream="http:\/\/etherx.jabber.org\/streams"><not-well-formed /);
  await c.closed;
});

test('XEP-0156: host-meta and host-meta.json name the WebSocket endpoint', async () => {
  const json = await (await fetch(`http://127.0.0.1:${http}/.well-known/host-meta.json`, { headers: { Host: 'localhost' } })).json() as { links: Array<{ rel: string; href: string }> };
  assert.equal(json.links[0], { rel: 'urn:xmpp:alt-connections:websocket', href: `ws://127.0.0.1:${http}/xmpp-websocket` });
  const xrd = await (await fetch(`http://127.0.0.1:${http}/.well-known/host-meta`)).text();
  assert.match(xrd, /<Link rel="urn:xmpp:alt-connections:websocket" href="ws:\/\/127.0.0.1:\d+\/xmpp-websocket"\/>/);
});

test('the engine\'s output cut into frames: across writes, CDATA and quoted ">" inside, namespaces declared; a client\'s open and close', () => {
  const pieces = new OutboundPieces();
  const f = { push: (text: string) => pieces.push(text).map(frameOf) };
  assert.equal(f.push(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" from="localhost" id="s1" version="1.0" xml:lang="en"><stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:fea`), [
    '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="localhost" id="s1" version="1.0" xml:lang="en"/>',
  ]);
  assert.equal(f.push('tures><message to="a@b" id=\'x>y\'><body><![CDATA[<not a tag>]]></body></message><r xmlns="urn:xmpp:sm:3"/>'), [
    '<stream:features xmlns:stream="http://etherx.jabber.org/streams"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>',
    '<message xmlns="jabber:client" to="a@b" id=\'x>y\'><body><![CDATA[<not a tag>]]></body></message>',
    '<r xmlns="urn:xmpp:sm:3"/>',
  ]);
  assert.equal(f.push('<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error></stream:stream>'), [
    '<stream:error xmlns:stream="http://etherx.jabber.org/streams"><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>',
    '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>',
  ]);
  assert.is(inboundText("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0' xml:lang='de'/>"),
    '<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="localhost" version="1.0" xml:lang="de">');
  assert.is(inboundText("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"), '</stream:stream>');
  assert.is(inboundText('<presence/>'), '<presence/>');
});

test.run();
