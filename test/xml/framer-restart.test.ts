// Stream restarts (RFC 6120 §5.4.3.3 after STARTTLS, §6.4.6 after SASL), pausing, and failure recovery.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamFramer, XmlError, type StanzaHeader } from '../../src/xml/framer.ts';
import { HEADER, recorder, type Event } from '../helpers/framer.ts';

const TLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const AUTH = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABy</auth>";

function kinds(events: Event[]): string[] {
  return events.map((e) => (e.t === 'stanza' ? e.h.name : e.t));
}

test('STARTTLS: plaintext injected after <starttls/> never reaches the new stream', () => {
  const events: string[] = [];
  const framer: StreamFramer = new StreamFramer({
    onStreamStart: () => events.push('start'),
    onStanza: (_xml, h) => {
      events.push(h.name);
      if (h.name === 'starttls') { framer.pause(); framer.reset(); } // as the connection does before the TLS handshake
    },
    onStreamEnd: () => events.push('end'),
  });
  framer.write(Buffer.from(HEADER + TLS + "<message to='victim@example.com'><body>injected</body></message>"));
  assert.equal(events, ['start', 'starttls']);
  assert.is(framer.buffered, 0);
  framer.resume();
  // bytes from the TLS layer: a fresh stream, XML declaration allowed again
  framer.write(Buffer.from(`<?xml version='1.0'?>${HEADER}<presence/>`));
  assert.equal(events, ['start', 'starttls', 'start', 'presence']);
});

test('reset inside a callback without pausing also drops the rest of the chunk', () => {
  const events: string[] = [];
  const framer: StreamFramer = new StreamFramer({
    onStreamStart: () => events.push('start'),
    onStanza: (_xml, h) => { events.push(h.name); if (h.name === 'starttls') framer.reset(); },
    onStreamEnd: () => events.push('end'),
  });
  framer.writeString(HEADER + TLS + '<message/><message/>');
  assert.equal(events, ['start', 'starttls']);
  framer.writeString(HEADER + '<message/>');
  assert.equal(events, ['start', 'starttls', 'start', 'message']);
});

test('SASL: a restart pipelined after <auth/> is kept with keepPending and read on resume', async () => {
  const events: string[] = [];
  const framer: StreamFramer = new StreamFramer({
    onStreamStart: (h) => events.push('start:' + (h.id ?? '')),
    onStanza: (_xml, h) => { events.push(h.name); if (h.name === 'auth') framer.pause(); },
    onStreamEnd: () => events.push('end'),
  });
  const restart = HEADER.replace('>', " id='second'>");
  framer.writeString(HEADER + AUTH + restart + "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
  assert.equal(events, ['start:', 'auth']);
  framer.writeString('<presence/>'); // more input while paused is held, not scanned
  assert.equal(events, ['start:', 'auth']);
  await new Promise((r) => setTimeout(r, 5)); // credentials checked asynchronously
  framer.reset({ keepPending: true });
  assert.equal(events, ['start:', 'auth']);
  framer.resume();
  assert.equal(events, ['start:', 'auth', 'start:second', 'iq', 'presence']);
});

test('reset with keepPending inside a callback, unpaused, continues in the same write', () => {
  const events: string[] = [];
  const framer: StreamFramer = new StreamFramer({
    onStreamStart: () => events.push('start'),
    onStanza: (_xml, h) => { events.push(h.name); if (h.name === 'success') framer.reset({ keepPending: true }); },
    onStreamEnd: () => events.push('end'),
  });
  framer.writeString(HEADER + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" + HEADER + '<presence/>');
  assert.equal(events, ['start', 'success', 'start', 'presence']);
});

test('after a reset the new stream gets fresh namespace bindings and depth', () => {
  const { framer, events } = recorder();
  framer.writeString("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:x'><message>");
  framer.reset();
  // the old stream's open <message> and its x prefix are gone
  framer.writeString(HEADER + '<message/>');
  assert.equal(kinds(events), ['start', 'start', 'message']);
  framer.reset();
  framer.writeString(HEADER);
  assert.throws(() => framer.writeString('<x:y/>'), (e: unknown) => (e as XmlError).condition === 'bad-namespace-prefix');
});

test('a reset clears a failure; the XML declaration must again be first', () => {
  const { framer, events } = recorder();
  assert.throws(() => framer.writeString(HEADER + '<a></b>'), (e: unknown) => e instanceof XmlError);
  framer.reset();
  framer.writeString(`<?xml version='1.0'?>${HEADER}<presence/>`);
  assert.equal(kinds(events), ['start', 'start', 'presence']);
  framer.reset();
  assert.throws(() => framer.writeString(`${HEADER}<?xml version='1.0'?>`), (e: unknown) => (e as XmlError).condition === 'restricted-xml');
});

test('pause holds events until resume, across several writes', () => {
  const seen: string[] = [];
  const framer: StreamFramer = new StreamFramer({
    onStreamStart: () => seen.push('start'),
    onStanza: (_xml, h) => { seen.push(h.id ?? '?'); if (h.id === '1') framer.pause(); },
    onStreamEnd: () => seen.push('end'),
  });
  framer.writeString(HEADER + "<message id='1'/><message id='2'/>");
  assert.is(framer.isPaused, true);
  framer.write(Buffer.from("<message id='3'/></stream:stream>"));
  assert.equal(seen, ['start', '1']);
  framer.resume();
  assert.equal(seen, ['start', '1', '2', '3', 'end']);
  assert.is(framer.isPaused, false);
});

test('a violation in held input surfaces on resume', () => {
  const framer: StreamFramer = new StreamFramer({
    onStreamStart() {},
    onStanza: () => framer.pause(),
    onStreamEnd() {},
  });
  framer.write(Buffer.concat([Buffer.from(HEADER + '<presence/><message>'), Buffer.from([0xff])]));
  assert.throws(() => framer.resume(), (e: unknown) => (e as XmlError).condition === 'unsupported-encoding');
});

test('a callback that throws leaves the framer consistent for the next write', () => {
  let fail = true;
  const got: StanzaHeader[] = [];
  const framer = new StreamFramer({
    onStreamStart() {},
    onStanza: (_xml, h) => { if (fail) { fail = false; throw new Error('consumer bug'); } got.push(h); },
    onStreamEnd() {},
  });
  assert.throws(() => framer.writeString(HEADER + "<message id='1'/><message id='2'/>"), /consumer bug/);
  framer.writeString("<message id='3'/>");
  assert.equal(got.map((h) => h.id), ['2', '3']);
});

test('fragment mode resets to headerless scanning', () => {
  const { framer, events } = recorder({ fragment: { xmlns: 'jabber:client' } });
  framer.writeString('<message>');
  framer.reset();
  framer.writeString('<presence/>');
  assert.equal(kinds(events), ['presence']);
});

test.run();
