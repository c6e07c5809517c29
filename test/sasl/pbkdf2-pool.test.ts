// Account verifiers are derived on the piscina pool, not on libuv's thread pool that LevelDB needs:
// a node creating a batch of accounts keeps answering and delivering meanwhile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pbkdf2Sync } from 'node:crypto';
import { pbkdf2Completed } from '../../src/sasl/pbkdf2-pool.ts';
import { deriveCredentials, keysFromSaltedPassword } from '../../src/sasl/scram.ts';
import { bodies, rawLogin, startServer } from '../helpers/xmpp.ts';

test('deriveCredentials runs on the pool and gives the same keys as pbkdf2 does', async () => {
  const before = pbkdf2Completed();
  const salt = Buffer.from('0123456789abcdef');
  const c = await deriveCredentials('pencil', 'SHA-256', 4096, salt);
  assert.is(pbkdf2Completed(), before + 1);
  const expected = keysFromSaltedPassword('SHA-256', pbkdf2Sync('pencil', salt, 4096, 32, 'sha256'));
  assert.equal(c.storedKey, expected.storedKey);
  assert.equal(c.serverKey, expected.serverKey);
});

test('while 200 accounts are imported through the admin handlers, chat and pings go on', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; });
  try {
    await s.addUser('alice');
    await s.addUser('bob');
    const a = await rawLogin(s.port, 'alice', 'pc');
    const b = await rawLogin(s.port, 'bob', 'pc');
    b.send('<presence/>');
    await b.waitFor(/<presence from="bob@localhost\/pc"/);
    const handlers = (await import('../../src/cli/accounts.ts')).accountAdminHandlers(s.node.runtime.db, { hosts: ['localhost'], cleanUp: async () => {} });
    const lines = Array.from({ length: 200 }, (_, i) => `batch${i}@localhost pw${i}`);
    let importing = true;
    const done = handlers.get('import-users')!({ lines }).finally(() => { importing = false; });
    let during = 0;
    for (let i = 1; importing && i <= 10_000; i++) {
      a.send(`<message to='bob@localhost' type='chat'><body>m${i}</body></message><iq type='get' id='p${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await b.waitFor(new RegExp(`<body>m${i}</body>`), 10_000);
      await a.waitFor(new RegExp(`id="p${i}"`), 10_000);
      if (importing) during++;
    }
    console.log(`message and ping round trips while importing 200 accounts: ${during}`);
    const r = await done as { imported: number };
    assert.is(r.imported, 200);
    // Relative to the work, not the clock: with PBKDF2 on libuv's pool (LevelDB's too) this was 20
    // round trips for 200 accounts; on the piscina pool, some 600.
    assert.ok(during >= 50, `only ${during} message and ping round trips while 200 accounts were imported`);
    assert.is(bodies(b.received).length, new Set(bodies(b.received)).size, 'none twice');
    a.close(); b.close();
  } finally {
    await s.stop();
  }
});

test.run();
