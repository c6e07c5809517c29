// /metrics (Prometheus) on the HTTP listener: what a scrape shows while a client is connected and
// chatting, and who may scrape (loopback by default; with a password, basic auth).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

let open: TestServer, locked: TestServer;
test.before(async () => {
  const [h1, h2] = [await freePort(), await freePort()];
  open = await friendsServer((c) => { c.listen.http = h1; });
  locked = await friendsServer((c) => { c.listen.http = h2; c.metrics.password = 'a long secret here'; });
});
test.after(async () => { await open.stop(); await locked.stop(); });

const value = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
};

test('a scrape shows the sessions, the actors per kind, the stanzas that went through by kind, the durable writes and the main thread', async () => {
  const alice = await login(open.port, 'alice', { password: 'pw', presence: true });
  const bob = await login(open.port, 'bob', { password: 'pw', presence: true });
  try {
    await alice.c.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'counted')));
    await bob.next(isMessage('counted'));
    const r = await fetch(`http://127.0.0.1:${open.config.listen.http}/metrics`);
    assert.is(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    assert.is(value(text, 'chorus_actors{kind="session"}'), 2);
    assert.is(value(text, 'chorus_actors{kind="user"}'), 2);
    assert.is(value(text, 'chorus_client_connections'), 2);
    assert.ok(value(text, 'chorus_stanzas_in_total{type="message"}') >= 1, text);
    assert.ok(value(text, 'chorus_stanzas_out_total{type="message"}') >= 1, text);
    assert.ok(value(text, 'chorus_stanzas_out_total{type="presence"}') >= 1, text);
    // The message went through the durable path: batches were written with its operations.
    const ops = ['1', '2'].reduce((n, t) => n + value(text, `chorus_durable_ops{scheduler="${t}"}`), 0);
    const batches = ['1', '2'].reduce((n, t) => n + value(text, `chorus_durable_batches{scheduler="${t}"}`), 0);
    assert.ok(batches >= 1 && ops >= batches, `${batches} batches, ${ops} ops`);
    assert.ok(value(text, 'chorus_messages_handled{scheduler="1"}') > 0);
    for (const t of ['1', '2']) assert.ok(value(text, `chorus_scheduler_event_loop_lag_max_seconds{scheduler="${t}"}`) >= 0, `scheduler ${t}'s lag`);
    assert.match(text, /^chorus_supervisor_restarts\{supervisor="sessions"\} 0$/m);
    assert.ok(value(text, 'chorus_main_process_resident_memory_bytes') > 10_000_000);
    assert.match(text, /^chorus_main_nodejs_eventloop_lag_seconds /m);
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test('with metrics.password a scrape needs basic auth, from anywhere', async () => {
  const url = `http://127.0.0.1:${locked.config.listen.http}/metrics`;
  const none = await fetch(url);
  assert.is(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Basic/);
  const wrong = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from('prometheus:nope').toString('base64')}` } });
  assert.is(wrong.status, 401);
  const right = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from('prometheus:a long secret here').toString('base64')}` } });
  assert.is(right.status, 200);
  assert.match(await right.text(), /chorus_actors/);
});

test.run();
