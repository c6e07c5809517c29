// The routing tables of RFC 6120 §10 and RFC 6121 §8 as transcripts over real sockets: message,
// presence and IQ to one's own bare/full JID, to a contact's bare/full JID with 0, 1 or 2 resources
// and priorities, to the server, to an unknown local user and to a remote domain. Every stanza either
// arrives where the RFC says or is answered with the RFC's error; nothing is dropped silently.
import { test } from 'uvu';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { party, type Party } from '../helpers/transcript.ts';

let server: TestServer;
const open: Party[] = [];
test.before(async () => {
  // The RFC's tables as they are: archives (which stamp a stanza-id on what they keep) are off.
  server = await startServer((c) => { c.c2s_require_encryption = false; c.modules.disabled = [...c.modules.disabled, 'mam']; });
});
test.after.each(() => { for (const p of open.splice(0)) p.close(); });
test.after(async () => { await server.stop(); });

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

let accounts = 0;
/** Fresh accounts for one test (`alice7`, `bob7`): nothing of another test's sessions reaches them. */
async function fresh(): Promise<[string, string]> {
  const n = ++accounts;
  await server.addUser(`alice${n}`);
  await server.addUser(`bob${n}`);
  return [`alice${n}`, `bob${n}`];
}

const priorities = new Map<string, number>();

/** Logs in; with a priority, sends available presence as RFC 6121 §4.2 has it: the resource gets its
 *  own presence back, then that of each of `others` (its account's available resources, in order),
 *  and each of them gets the new one's. */
async function login(local: string, resource: string, priority?: number, others: Party[] = []): Promise<Party> {
  const p = await party(server.port, local, resource);
  open.push(p);
  if (priority !== undefined) await available(p, priority, others);
  return p;
}

async function available(p: Party, priority: number, others: Party[] = []): Promise<void> {
  const presence = (from: string, to: string, n: number) => `<presence from='${from}' to='${to}'><priority>${n}</priority></presence>`;
  p.sends(`<presence><priority>${priority}</priority></presence>`);
  const initial = !priorities.has(p.jid);
  priorities.set(p.jid, priority);
  await p.receives(presence(p.jid, p.jid, priority));
  for (const o of others) {
    if (initial) await p.receives(presence(o.jid, p.jid, priorities.get(o.jid)!));
    await o.receives(presence(p.jid, o.jid, priority));
  }
}

/** A stanza error as the server makes it: from the address that failed, without the original payload. */
const error = (kind: string, id: string, from: string, to: string, type: string, condition: string) =>
  `<${kind} from='${from}' to='${to}' id='${id}' type='error'><error type='${type}'><${condition} xmlns='${STANZAS}'/></error></${kind}>`;

// ---- messages (RFC 6121 §8.5.2, §8.5.3) -------------------------------------------------------------

test('message to a contact\'s bare JID with one available resource: delivered to it', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  const bob = await login(B, 'b', 0);
  alice.sends(`<message to='${B}@localhost' type='chat' id='m1'><body>hi</body></message>`);
  await bob.receives(`<message to='${B}@localhost' type='chat' id='m1' from='${A}@localhost/a'><body>hi</body></message>`);
});

test('message to a bare JID with two resources: the higher priority gets it; on a tie both do', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  const b1 = await login(B, 'one', 1);
  const b2 = await login(B, 'two', 0, [b1]);
  alice.sends(`<message to='${B}@localhost' type='chat' id='m2'><body>to one</body></message>`);
  await b1.receives(`<message to='${B}@localhost' type='chat' id='m2' from='${A}@localhost/a'><body>to one</body></message>`);
  await b2.sync('localhost');
  await available(b2, 1, [b1]);
  alice.sends(`<message to='${B}@localhost' type='normal' id='m3'><body>to both</body></message>`);
  await b1.receives(`<message to='${B}@localhost' type='normal' id='m3' from='${A}@localhost/a'><body>to both</body></message>`);
  await b2.receives(`<message to='${B}@localhost' type='normal' id='m3' from='${A}@localhost/a'><body>to both</body></message>`);
});

test('headline to a bare JID: every resource with non-negative priority', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  const b1 = await login(B, 'one', 2);
  const b2 = await login(B, 'two', 0, [b1]);
  const b3 = await login(B, 'neg', -1, [b1, b2]);
  alice.sends(`<message to='${B}@localhost' type='headline' id='h1'><body>news</body></message>`);
  await b1.receives(`<message to='${B}@localhost' type='headline' id='h1' from='${A}@localhost/a'><body>news</body></message>`);
  await b2.receives(`<message to='${B}@localhost' type='headline' id='h1' from='${A}@localhost/a'><body>news</body></message>`);
  await b3.sync('localhost');
});

test('message to a full JID: that resource; to a resource that is not there: as to the bare JID', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  const b1 = await login(B, 'one', 1);
  const b2 = await login(B, 'two', 0, [b1]);
  alice.sends(`<message to='${B}@localhost/two' type='chat' id='f1'><body>you two</body></message>`);
  await b2.receives(`<message to='${B}@localhost/two' type='chat' id='f1' from='${A}@localhost/a'><body>you two</body></message>`);
  alice.sends(`<message to='${B}@localhost/gone' type='chat' id='f2'><body>anyone</body></message>`);
  await b1.receives(`<message to='${B}@localhost/gone' type='chat' id='f2' from='${A}@localhost/a'><body>anyone</body></message>`);
  await b2.sync('localhost');
});

test('groupchat to an account, or to a resource that is not there: service-unavailable', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  await login(B, 'b', 0);
  alice.sends(`<message to='${B}@localhost' type='groupchat' id='g1'><body>x</body></message>`);
  await alice.receives(error(`message`, `g1`, `${B}@localhost`, `${A}@localhost/a`, `cancel`, `service-unavailable`));
  alice.sends(`<message to='${B}@localhost/gone' type='groupchat' id='g2'><body>y</body></message>`);
  await alice.receives(error(`message`, `g2`, `${B}@localhost/gone`, `${A}@localhost/a`, `cancel`, `service-unavailable`));
});

test('message to an account with no available resource is kept (offline), and delivered on presence', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  alice.sends(`<message to='${B}@localhost' type='chat' id='o1'><body>later</body></message>`);
  await alice.sync(`${B}@localhost`);
  const bob = await login(B, 'b');
  bob.sends(`<presence/>`);
  await bob.receives(`<message to='${B}@localhost' type='chat' id='o1' from='${A}@localhost/a'><body>later</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='*'>Offline Storage</delay></message>`);
});

test('message to one\'s own bare JID: one\'s own available resources', async () => {
  const [A] = await fresh();
  const a1 = await login(A, 'one', 0);
  const a2 = await login(A, 'two');
  a2.sends(`<message to='${A}@localhost' type='chat' id='s1'><body>note to self</body></message>`);
  await a1.receives(`<message to='${A}@localhost' type='chat' id='s1' from='${A}@localhost/two'><body>note to self</body></message>`);
  await a2.sync('localhost');
});

test('message to the server, to an unknown local user, to a remote domain: the RFC\'s errors', async () => {
  const [A] = await fresh();
  const alice = await login(A, 'a');
  alice.sends(`<message to='localhost' type='chat' id='e1'><body>server?</body></message>`);
  await alice.receives(error(`message`, `e1`, `localhost`, `${A}@localhost/a`, `cancel`, `service-unavailable`));
  alice.sends(`<message to='nobody@localhost' type='chat' id='e2'><body>hello?</body></message>`);
  await alice.receives(error(`message`, `e2`, `nobody@localhost`, `${A}@localhost/a`, `cancel`, `service-unavailable`));
  alice.sends(`<message to='carol@remote.example' type='chat' id='e3'><body>far</body></message>`);
  await alice.receives(error(`message`, `e3`, `carol@remote.example`, `${A}@localhost/a`, `cancel`, `remote-server-not-found`));
  // a group-chat service that this node does not host is another server
  alice.sends(`<presence to='room@conference.elsewhere.example/alice' id='e4'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
  await alice.receives(error(`presence`, `e4`, `room@conference.elsewhere.example/alice`, `${A}@localhost/a`, `cancel`, `remote-server-not-found`));
  // an error is never answered (RFC 6120 §8.3.1)
  alice.sends(`<message to='carol@remote.example' type='error' id='e5'><error type='cancel'><gone xmlns='${STANZAS}'/></error></message>`);
  await alice.sync('remote.example');
});

// ---- IQ (RFC 6120 §10.3, RFC 6121 §8.5) ---------------------------------------------------------------

test('IQ to a full JID: that resource answers; to a resource that is not there: service-unavailable', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  const bob = await login(B, 'b');
  alice.sends(`<iq to='${B}@localhost/b' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>`);
  await bob.receives(`<iq to='${B}@localhost/b' type='get' id='q1' from='${A}@localhost/a'><query xmlns='jabber:iq:version'/></iq>`);
  bob.sends(`<iq to='${A}@localhost/a' type='result' id='q1'><query xmlns='jabber:iq:version'><name>bot</name></query></iq>`);
  await alice.receives(`<iq to='${A}@localhost/a' type='result' id='q1' from='${B}@localhost/b'><query xmlns='jabber:iq:version'><name>bot</name></query></iq>`);
  alice.sends(`<iq to='${B}@localhost/gone' type='get' id='q2'><query xmlns='jabber:iq:version'/></iq>`);
  await alice.receives(error(`iq`, `q2`, `${B}@localhost/gone`, `${A}@localhost/a`, `cancel`, `service-unavailable`));
});

test('IQ to a bare JID or to the server: the server answers for it', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  await login(B, 'b');
  alice.sends(`<iq to='${B}@localhost' type='get' id='q3'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
  await alice.receives(`<iq from='${B}@localhost' to='${A}@localhost/a' id='q3' type='result'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
  alice.sends(`<iq to='localhost' type='get' id='q4'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await alice.receives(`<iq from='localhost' to='${A}@localhost/a' id='q4' type='result'/>`);
  alice.sends(`<iq type='get' id='q5'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await alice.receives(`<iq from='${A}@localhost' to='${A}@localhost/a' id='q5' type='result'/>`);
  alice.sends(`<iq to='localhost' type='get' id='q6'><query xmlns='urn:example:unknown'/></iq>`);
  await alice.receives(error(`iq`, `q6`, `localhost`, `${A}@localhost/a`, `cancel`, `service-unavailable`));
});

test('IQ to a remote domain: remote-server-not-found; a result to one is not answered', async () => {
  const [A] = await fresh();
  const alice = await login(A, 'a');
  alice.sends(`<iq to='remote.example' type='get' id='r1'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await alice.receives(error(`iq`, `r1`, `remote.example`, `${A}@localhost/a`, `cancel`, `remote-server-not-found`));
  alice.sends(`<iq to='carol@remote.example/x' type='result' id='r2'/>`);
  await alice.sync('remote.example');
});

// ---- presence (RFC 6121 §4.6, §8.5) -------------------------------------------------------------------

test('directed presence to a full JID reaches it; to the server it is taken quietly', async () => {
  const [A, B] = await fresh();
  const alice = await login(A, 'a');
  const bob = await login(B, 'b');
  alice.sends(`<presence to='${B}@localhost/b'><show>away</show></presence>`);
  await bob.receives(`<presence to='${B}@localhost/b' from='${A}@localhost/a'><show>away</show></presence>`);
  alice.sends(`<presence to='localhost'/>`);
  await alice.sync('localhost');
});

test.run();
