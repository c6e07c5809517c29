import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { client, xml } from '@xmpp/client';
import { startServer, type TestServer } from '../helpers/xmpp.ts';

let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; });
  await server.addUser('alice');
  await server.addUser('bob');
});
test.after(async () => { await server.stop(); });

test('two users log in and chat', async () => {
  const mk = (u: string) => client({ service: `xmpp://127.0.0.1:${server.port}`, domain: 'localhost', username: u, password: 'secret', resource: 'test' });
  const alice = mk('alice'), bob = mk('bob');
  alice.on('error', () => {}); bob.on('error', () => {});
  await alice.start();
  await bob.start();
  await bob.send(xml('presence'));
  await new Promise((r) => setTimeout(r, 200));
  const got = new Promise<string>((resolve) => bob.on('stanza', (s: any) => { if (s.is('message')) resolve(s.getChildText('body')); }));
  await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'hello bob')));
  assert.is(await got, 'hello bob');
  await alice.stop(); await bob.stop();
});

test.run();
