// Faults under load (#8): pairs chat at a steady rate with XEP-0198 on while session and user actors
// are killed again and again (`chorus kill`'s operation): the supervisors restart them from their
// snapshots, the connections stay open, and no message the server acknowledged is lost. A message
// may come twice after a crash (a durable message handled again): counted and shown, not hidden.
// (kill -9 of the whole process under load: test/c2s/durability.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rawLogin, startServer, type RawClient, type TestServer } from '../helpers/xmpp.ts';
import { until } from '../helpers/runtime.ts';

const SM = 'urn:xmpp:sm:3';
const PAIRS = 4;
const PER_SENDER = 150;

let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; });
  for (let i = 0; i < PAIRS; i++) { await server.addUser(`s${i}`); await server.addUser(`r${i}`); }
});
test.after(async () => { await server.stop(); });

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

test('session and user actors killed again and again while pairs chat: nothing acknowledged is lost, the connections stay', async () => {
  const pairs = await Promise.all(Array.from({ length: PAIRS }, async (_, i) => ({ i, s: await smClient(`s${i}`), r: await smClient(`r${i}`) })));
  let sending = true;
  // Each sender: one message every 10 ms, ids s<i>-<n>, and an <r/> every 10.
  const senders = pairs.map(async ({ i, s }) => {
    for (let n = 1; n <= PER_SENDER; n++) {
      s.c.send(`<message to='r${i}@localhost/chaos' type='chat' id='m${i}-${n}'><body>s${i}-${n}</body></message>${n % 10 === 0 ? `<r xmlns='${SM}'/>` : ''}`);
      await new Promise((res) => setTimeout(res, 10));
    }
    s.c.send(`<r xmlns='${SM}'/>`);
  });
  // Meanwhile: kill a session or user actor of either side every 100 ms.
  const victims = pairs.flatMap(({ i }) => [`session:s${i}@localhost/chaos`, `session:r${i}@localhost/chaos`, `user:s${i}@localhost`, `user:r${i}@localhost`]);
  let kills = 0;
  const killer = (async () => {
    for (let k = 0; sending; k++) {
      if (await server.node.runtime.kill(victims[(k * 7) % victims.length]!)) kills++;
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  await Promise.all(senders);
  sending = false;
  await killer;
  // What each sender's server acknowledged must reach its receiver.
  for (const { i, s, r } of pairs) {
    await until(() => s.acked() >= PER_SENDER + 1, 30_000, `s${i}'s messages acknowledged`); // + its own presence
    const want = Array.from({ length: PER_SENDER }, (_, n) => `s${i}-${n + 1}`);
    await until(() => want.every((b) => r.c.received.includes(`<body>${b}</body>`)), 30_000, `r${i} has every message`);
  }
  let twice = 0;
  for (const { r } of pairs) {
    const got = [...r.c.received.matchAll(/<body>(s\d+-\d+)<\/body>/g)].map((m) => m[1]!);
    twice += got.length - new Set(got).size;
  }
  console.log(`chaos: ${kills} actors killed while ${PAIRS} pairs sent ${PAIRS * PER_SENDER} messages; 0 lost, ${twice} delivered twice`);
  assert.ok(kills >= 10, `${kills} kills`);
  for (const { s, r } of pairs) {
    assert.not.ok(s.c.closed || r.c.closed, 'the connections stay open');
    assert.not.match(s.c.received + r.c.received, /stream:error/);
  }
  for (const { s, r } of pairs) { s.c.close(); r.c.close(); }
});

test.run();
