// Last Activity (XEP-0012) on the real core, with roster and presence as on a node.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import last from '../../src/modules/last.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import { rosterKeys, type RosterItem } from '../../src/modules/roster-store.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { Core } from '../helpers/core.ts';

const A = 'alice@example.com/a', B = 'bob@example.com/b', C = 'carol@example.com/c';
const q = `<query xmlns="${NS.LAST}"/>`;
const errorOf = (e: XmlElement) => e.child('error')?.getChildren()[0]?.name;

async function node(): Promise<Core> {
  const h = await Core.start([roster, presence, last]);
  for (const [owner, contact] of [['alice', 'bob'], ['bob', 'alice']]) {
    await h.seed(rosterKeys.item(`${owner}@example.com`, `${contact}@example.com`), { jid: `${contact}@example.com`, groups: [], subscription: 'both', ask: false, approved: false, pendingIn: null, listed: true } satisfies RosterItem);
  }
  for (const full of [A, B, C]) { h.bind(full); h.send(full, '<presence/>'); }
  await h.settle();
  return h;
}

test('the server: its uptime in seconds', async () => {
  const h = await node();
  const r = await h.ask(B, 'get', q, 'example.com');
  assert.ok(Number(r.child('query', NS.LAST)!.attr('seconds')) >= 0);
});

test('a contact: 0 while online; after it went offline, the seconds since and its last status', async () => {
  const h = await node();
  assert.is((await h.ask(B, 'get', q, 'alice@example.com')).child('query', NS.LAST)!.attr('seconds'), '0');
  h.send(A, '<presence type="unavailable"><status>gone fishing</status></presence>');
  h.unbind(A);
  await h.settle();
  h.clock += 90_000;
  const r = (await h.ask(B, 'get', q, 'alice@example.com')).child('query', NS.LAST)!;
  assert.equal([r.attr('seconds'), r.text()], ['90', 'gone fishing']);
});

test('someone not subscribed to the presence is refused', async () => {
  const h = await node();
  assert.is(errorOf(await h.ask(C, 'get', q, 'alice@example.com')), 'forbidden');
});

test.run();
