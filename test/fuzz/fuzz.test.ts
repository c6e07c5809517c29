// A short seeded run of bench/fuzz.ts (#8): hostile inputs over live sockets at every stage of a
// session and over every transport; the node survives, no actor crashes, nothing is logged as an
// error, and a normal login and message work afterwards. The long run is in bench/results/.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fuzz, inputFor, normalChat, USER, VICTIM, PASSWORD } from '../../bench/fuzz.ts';
import { startServer } from '../helpers/xmpp.ts';

test('the same seed gives the same inputs', () => {
  assert.equal(inputFor(7, 42), inputFor(7, 42));
  assert.not.equal(inputFor(7, 42).tail, inputFor(7, 43).tail);
});

test('400 seeded hostile inputs: the node serves on, no actor crashed, no error logged', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.limits.sessions_per_account = 10_000; c.limits.login_attempts = { max_failures: 1e9, window_seconds: 1, address_max_failures: 1e9, address_window_seconds: 1 }; });
  try {
    for (const u of [USER, VICTIM]) await s.addUser(u, PASSWORD);
    const crashesBefore = s.node.runtime.counters.actorCrashes;
    const target = { host: '127.0.0.1', port: s.port, tlsPort: s.tlsPort };
    const c = await fuzz(target, 20261203, 400, 16);
    console.log(`fuzz: ${JSON.stringify(c)}`);
    assert.is(c.inputs, 400);
    assert.is(c.refused, 0, 'every connection was accepted');
    assert.is(s.node.runtime.counters.actorCrashes, crashesBefore, 'no actor crashed');
    const errors = s.logs.filter((l) => l.startsWith('[error]'));
    assert.equal(errors, [], errors.slice(0, 5).join('\n'));
    assert.ok(await normalChat(target), 'u1 and u2 log in and chat afterwards');
  } finally { await s.stop(); }
});

test.run();
