// Faults under load (#8): pairs chat at a steady rate with XEP-0198 on while session and user actors
// (and a group chat's room actor) are killed again and again (`chorus kill`'s operation) and
// scheduler threads die: the supervisors restart them from their snapshots, the connections stay
// open, and no message the server acknowledged is lost. A message may come twice after a crash (a
// durable message handled again): counted and shown, not hidden. (kill -9 of the whole process under
// load: test/c2s/durability.test.ts; a link actor killed under traffic: test/s2s/federation.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawLogin, startServer, type RawClient, type TestServer } from '../helpers/xmpp.ts';
import { until } from '../helpers/runtime.ts';

const SM = 'urn:xmpp:sm:3';
const PAIRS = 4;
const PER_SENDER = 150;
const OCCUPANTS = 4;
const ROOM = 'hall@conference.localhost';

let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; });
  for (let i = 0; i < PAIRS; i++) { await server.addUser(`s${i}`); await server.addUser(`r${i}`); }
  for (let i = 0; i < OCCUPANTS; i++) await server.addUser(`o${i}`);
});
test.after(async () => { await server.stop(); });

/** Kills `victims` in turn every 100 ms until `busy` settles; how many it killed. */
async function killWhile(busy: Promise<unknown>, victims: string[]): Promise<number> {
  let sending = true, kills = 0;
  void busy.finally(() => { sending = false; });
  for (let k = 0; sending; k++) {
    // A kill asked of a thread that dies before answering fails: not counted.
    if (await server.node.runtime.kill(victims[(k * 7) % victims.length]!).catch(() => false)) kills++;
    await new Promise((res) => setTimeout(res, 100));
  }
  return kills;
}

/** How many bodies matching `re` a client got more than once. */
function twice(c: RawClient, re: RegExp): number {
  const got = [...c.received.matchAll(re)].map((m) => m[1]!);
  return got.length - new Set(got).size;
}

/** A raw client with stream management: answers the server's <r/> with what it has received, and
 *  knows the last <a h/> the server sent for what it sent. */
async function smClient(user: string): Promise<{ c: RawClient; acked: () => number }> {
  const c = await rawLogin(server.port, user, 'chaos');
  c.send(`<enable xmlns='${SM}'/><presence/>`);
  await c.waitFor(/<enabled/);
  const from = c.received.indexOf('<enabled');
  let answered = 0;
  c.socket.on('data', () => {
    const text = c.received.slice(from);
    const requests = (text.match(/<r xmlns="urn:xmpp:sm:3"\/>/g) ?? []).length;
    if (requests > answered) {
      answered = requests;
      c.send(`<a xmlns='${SM}' h='${(text.match(/<(message|presence|iq)[\s>]/g) ?? []).length}'/>`);
    }
  });
  const acked = () => Math.max(0, ...[...c.received.matchAll(/<a xmlns="urn:xmpp:sm:3" h="(\d+)"\/>/g)].map((m) => Number(m[1])));
  return { c, acked };
}

/** Sends `count` messages from `c`, one every 10 ms, with an <r/> after every 10 and at the end. */
async function sendEvery10ms(c: RawClient, count: number, stanza: (n: number) => string): Promise<void> {
  for (let n = 1; n <= count; n++) {
    c.send(`${stanza(n)}${n % 10 === 0 ? `<r xmlns='${SM}'/>` : ''}`);
    await new Promise((res) => setTimeout(res, 10));
  }
  c.send(`<r xmlns='${SM}'/>`);
}

test('session and user actors killed again and again, and both scheduler threads dying, while pairs chat: nothing acknowledged is lost, the connections stay', async () => {
  const pairs = await Promise.all(Array.from({ length: PAIRS }, async (_, i) => ({ i, s: await smClient(`s${i}`), r: await smClient(`r${i}`) })));
  const rt = server.node.runtime;
  const restarts = rt.counters.schedulerRestarts;
  const senders = Promise.all(pairs.map(({ i, s }) => sendEvery10ms(s.c, PER_SENDER, (n) => `<message to='r${i}@localhost/chaos' type='chat' id='m${i}-${n}'><body>s${i}-${n}</body></message>`)));
  // Each scheduler thread dies once along the way, a third and two thirds in.
  const threads = (async () => {
    for (const t of rt.threadIds()) {
      await new Promise((res) => setTimeout(res, PER_SENDER * 10 / 3));
      await rt.worker(t)?.terminate();
    }
  })();
  const victims = pairs.flatMap(({ i }) => [`session:s${i}@localhost/chaos`, `session:r${i}@localhost/chaos`, `user:s${i}@localhost`, `user:r${i}@localhost`]);
  const kills = await killWhile(senders, victims);
  await threads;
  // What each sender's server acknowledged must reach its receiver.
  for (const { i, s, r } of pairs) {
    await until(() => s.acked() >= PER_SENDER + 1, 30_000, `s${i}'s messages acknowledged`); // + its own presence
    const want = Array.from({ length: PER_SENDER }, (_, n) => `s${i}-${n + 1}`);
    await until(() => want.every((b) => r.c.received.includes(`<body>${b}</body>`)), 30_000, `r${i} has every message`)
      .catch((e) => { throw new Error(`${(e as Error).message}: missing ${want.filter((b) => !r.c.received.includes(`<body>${b}</body>`)).join(' ')}`); });
  }
  const dup = pairs.reduce((n, { r }) => n + twice(r.c, /<body>(s\d+-\d+)<\/body>/g), 0);
  const threadDeaths = rt.counters.schedulerRestarts - restarts;
  console.log(`chaos: ${kills} actors killed and ${threadDeaths} threads died while ${PAIRS} pairs sent ${PAIRS * PER_SENDER} messages; 0 lost, ${dup} delivered twice`);
  assert.ok(kills >= 5, `${kills} kills`); // kills asked of a thread while it is replaced fail
  assert.is(threadDeaths, rt.threadIds().length, 'every thread died once and was replaced');
  for (const { s, r } of pairs) {
    assert.not.ok(s.c.closed || r.c.closed, 'the connections stay open');
    assert.not.match(s.c.received + r.c.received, /stream:error/);
  }
  for (const { s, r } of pairs) { s.c.close(); r.c.close(); }
});

test('a room actor and its occupants\' actors killed again and again while two of them talk: every occupant gets every acknowledged message', async () => {
  const os = await Promise.all(Array.from({ length: OCCUPANTS }, (_, i) => smClient(`o${i}`)));
  const join = async (c: RawClient, nick: string) => {
    c.send(`<presence to='${ROOM}/${nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
    await c.waitFor(new RegExp(`<subject`));
  };
  await join(os[0]!.c, 'o0');
  os[0]!.c.send(`<iq to='${ROOM}' type='set' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
  await os[0]!.c.waitFor(/id="cfg"/);
  for (let i = 1; i < OCCUPANTS; i++) await join(os[i]!.c, `o${i}`);
  const talkers = [os[0]!, os[1]!];
  const ackedBefore = talkers.map((t) => t.acked());
  const senders = Promise.all(talkers.map((t, i) => sendEvery10ms(t.c, PER_SENDER, (n) => `<message to='${ROOM}' type='groupchat' id='g${i}-${n}'><body>o${i}-${n}</body></message>`)));
  const victims = [`room:${ROOM}`, ...os.map((_, i) => `user:o${i}@localhost`), `room:${ROOM}`, ...os.map((_, i) => `session:o${i}@localhost/chaos`)];
  const kills = await killWhile(senders, victims);
  for (const [i, t] of talkers.entries()) await until(() => t.acked() >= ackedBefore[i]! + PER_SENDER, 30_000, `o${i}'s messages acknowledged`);
  const want = talkers.flatMap((_, i) => Array.from({ length: PER_SENDER }, (_, n) => `o${i}-${n + 1}`));
  for (const [i, o] of os.entries()) await until(() => want.every((b) => o.c.received.includes(`<body>${b}</body>`)), 30_000, `o${i} has every message`);
  const dup = os.reduce((n, o) => n + twice(o.c, /<body>(o\d+-\d+)<\/body>/g), 0);
  console.log(`chaos: ${kills} room, user and session actors killed while 2 of ${OCCUPANTS} occupants sent ${2 * PER_SENDER} messages to the room; 0 lost, ${dup} delivered twice`);
  assert.ok(kills >= 10, `${kills} kills`);
  for (const o of os) {
    assert.not.ok(o.c.closed, 'the connections stay open');
    assert.not.match(o.c.received, /stream:error/);
  }
  for (const o of os) o.c.close();
});

test.run();
