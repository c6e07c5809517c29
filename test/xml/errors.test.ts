import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { streamOpen, x } from '../../src/xml/builder.ts';
import { parseElement } from '../../src/xml/element.ts';
import { validateStanza } from '../../src/xml/framer.ts';
import {
  STANZA_ERROR_TYPES, STREAM_ERROR_CONDITIONS, iqResult, iqResultElement, stanzaError, stanzaErrorElement,
  streamError, type StanzaErrorCondition,
} from '../../src/xmpp/errors.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { feed } from '../helpers/framer.ts';

test('all 25 RFC 6120 stream error conditions, each a well-formed error a peer can read', () => {
  assert.is(new Set(STREAM_ERROR_CONDITIONS).size, 25);
  for (const c of STREAM_ERROR_CONDITIONS) {
    const run = feed(streamOpen() + streamError(c, 'why <now> & then'));
    assert.is(run.error, null, c);
    assert.equal(run.events.map((e) => e.t), ['start', 'stanza', 'end'], c);
    const e = run.events[1]!;
    if (e.t !== 'stanza') throw new Error('no error element');
    assert.equal([e.h.name, e.h.xmlns], ['error', NS.STREAMS]);
    const el = parseElement(e.xml);
    assert.ok(el.child(c, NS.STREAM_ERRORS), c);
    assert.is(el.getChildText('text', NS.STREAM_ERRORS), 'why <now> & then');
  }
});

test('stream error exact form, see-other-host content, language and application condition', () => {
  assert.is(streamError('not-well-formed'),
    '<stream:error><not-well-formed xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error></stream:stream>');
  const s = streamError('see-other-host', 'moved', { host: '[2001:db8::1]:5222', lang: 'en', app: x('escape-your-data', { xmlns: 'urn:app' }) });
  assert.is(s, '<stream:error><see-other-host xmlns="urn:ietf:params:xml:ns:xmpp-streams">[2001:db8::1]:5222</see-other-host>' +
    '<text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">moved</text><escape-your-data xmlns="urn:app"/></stream:error></stream:stream>');
});

test('all 22 stanza error conditions with their usual types', () => {
  const conditions = Object.keys(STANZA_ERROR_TYPES) as StanzaErrorCondition[];
  assert.is(conditions.length, 22);
  assert.equal(
    [STANZA_ERROR_TYPES['service-unavailable'], STANZA_ERROR_TYPES['recipient-unavailable'], STANZA_ERROR_TYPES['forbidden'],
      STANZA_ERROR_TYPES['bad-request'], STANZA_ERROR_TYPES['remote-server-timeout'], STANZA_ERROR_TYPES['not-authorized']],
    ['cancel', 'wait', 'auth', 'modify', 'wait', 'auth'],
  );
  const h = validateStanza("<iq type='get' id='q1' to='svc.example' from='u@example/r'/>");
  for (const c of conditions) {
    const el = parseElement(stanzaError(h, null, c)!);
    assert.is(el.child('error')!.attr('type'), STANZA_ERROR_TYPES[c], c);
    assert.ok(el.child('error')!.child(c, NS.STANZAS), c);
  }
});

test('stanza error from a header: same kind and id, addresses swapped, text and by', () => {
  const h = validateStanza("<message to='juliet@example.com' from='romeo@example.net/o' id='m&amp;1' type='chat'><body>hi</body></message>");
  const xml = stanzaError(h, null, 'service-unavailable', 'no <such> user', { by: 'example.com', lang: 'en' })!;
  assert.is(xml, '<message type="error" id="m&amp;1" to="romeo@example.net/o" from="juliet@example.com">' +
    '<error type="cancel" by="example.com"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>' +
    '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">no &lt;such&gt; user</text></error></message>');
  const back = validateStanza(xml);
  assert.equal([back.type, back.id, back.to, back.from], ['error', 'm&1', 'romeo@example.net/o', 'juliet@example.com']);
});

test('an explicit type overrides the default; missing addresses stay missing', () => {
  const h = validateStanza("<presence type='subscribe'/>");
  const el = stanzaErrorElement(h, 'wait', 'resource-constraint')!;
  assert.equal([el.attr('to'), el.attr('from'), el.attr('id'), el.child('error')!.attr('type')], [undefined, undefined, undefined, 'wait']);
});

test('an error stanza is never answered with another error', () => {
  assert.is(stanzaError(validateStanza("<iq type='error' id='1'/>"), null, 'bad-request'), null);
  assert.is(stanzaErrorElement(parseElement("<message type='error'/>"), null, 'bad-request'), null);
});

test('stanza error from an element can carry the original payload, and gone/redirect carry a URI', () => {
  const el = parseElement("<iq type='set' id='s' to='a' from='b'><query xmlns='jabber:iq:private'><x/></query></iq>");
  const reply = parseElement(stanzaError(el, null, 'not-allowed', undefined, { includePayload: true })!);
  assert.equal(reply.getChildren().map((c) => c.name), ['query', 'error']);
  assert.ok(reply.child('query', 'jabber:iq:private')!.child('x'));
  const bare = parseElement(stanzaError(el, null, 'not-allowed')!);
  assert.equal(bare.getChildren().map((c) => c.name), ['error']);
  const gone = parseElement(stanzaError(el, null, 'gone', undefined, { uri: 'xmpp:new@example.org' })!);
  assert.is(gone.child('error')!.child('gone', NS.STANZAS)!.text(), 'xmpp:new@example.org');
  const other = parseElement(stanzaError(el, null, 'conflict', undefined, { uri: 'xmpp:ignored' })!);
  assert.is(other.child('error')!.child('conflict')!.text(), '');
});

test('iqResult: from a header or an element, with or without payload', () => {
  const h = validateStanza("<iq type='get' id='v1' from='u@e/r' to='e'><query xmlns='jabber:iq:version'/></iq>");
  assert.is(iqResult(h), '<iq type="result" id="v1" to="u@e/r" from="e"/>');
  const payload = x('query', { xmlns: NS.VERSION }, x('name', null, 'Chorus'));
  const el = iqResultElement(parseElement("<iq type='set' id='2'/>"), payload);
  assert.is(el.child('query', NS.VERSION)!.getChildText('name'), 'Chorus');
  assert.is(el.attr('to'), undefined);
});

test('iqResult refuses anything but an iq get/set with an id', () => {
  for (const bad of ["<iq type='result' id='1'/>", "<iq type='error' id='1'/>", "<iq type='get'/>", "<message type='get' id='1'/>"]) {
    assert.throws(() => iqResult(validateStanza(bad)), (e: unknown) => e instanceof TypeError, bad);
  }
});

test.run();
