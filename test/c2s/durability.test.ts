// The promise of XEP-0198 on Chorus: a stanza the server acknowledged (<a h/>) is never lost, even if
// the server process is SIGKILLed at any moment (Prosody 0.12 lost 346 of 1010 in the second case),
// or the recipient stops reading and is dropped for it, and a fast sender gets its acks as it goes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { until as waitFor } from '../helpers/runtime.ts';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Level } from 'level';
import { join } from 'node:path';
import { createAccount } from '../../src/storage/accounts.ts';
import { bodies, freePort, rawLogin, startNodeProcess, startServer, type RawClient } from '../helpers/xmpp.ts';
import { party } from '../helpers/transcript.ts';
import { tempDir } from '../helpers/runtime.ts';

const SM = 'urn:xmpp:sm:3';


async function accounts(dir: string, users: string[]): Promise<void> {
  const db = new Level<string, string>(join(dir, 'db'));
  await db.open();
  for (const u of users) await createAccount(db, `${u}@localhost`, 'secret', { iterations: 4096 });
  await db.close();
}

/**
 * Streams numbered messages with SM acks; SIGKILLs the node once `killAt` are acknowledged. The
 * sender stays at most WINDOW messages ahead of the acks (it waits on them, not on a clock), so a
 * slow machine still gets to `killAt` before `total` is sent.
 */
const WINDOW = 1000;
async function streamAndKill(port: number, child: ChildProcess, to: string, total: number, killAt: number): Promise<number> {
  const a = await rawLogin(port, 'sender', 'bulk');
  a.send(`<enable xmlns='${SM}'/>`);
  await a.waitFor(/<enabled/);
  let acked = 0;
  let wake: (() => void) | null = null;
  a.socket.on('data', () => {
    for (const m of a.received.matchAll(/<a xmlns="urn:xmpp:sm:3" h="(\d+)"\/>/g)) acked = Math.max(acked, Number(m[1]));
    if (acked >= killAt && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    wake?.();
  });
  child.once('exit', () => wake?.());
  for (let i = 1; i <= total && !child.killed; i++) {
    a.send(`<message to='${to}' type='chat'><body>m${i}</body></message>${i % 10 === 0 ? `<r xmlns='${SM}'/>` : ''}`);
    if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    while (i - acked > WINDOW && !child.killed && child.exitCode === null) await new Promise<void>((r) => { wake = r; });
    wake = null;
  }
  if (!child.killed) child.kill('SIGKILL');
  await new Promise<void>((r) => { if (child.exitCode !== null || child.signalCode !== null) r(); else child.once('exit', () => r()); });
  a.close();
  return acked;
}

async function collect(port: number, user: string): Promise<Set<number>> {
  const c = await rawLogin(port, user, 'after');
  c.send('<presence/>');
  await new Promise((r) => setTimeout(r, 1500));
  const got = new Set(bodies(c.received).map((b) => Number(b.slice(1))));
  c.close();
  return got;
}

test('recipient offline: every acknowledged message survives kill -9 (offline storage)', async () => {
  const dir = tempDir('chorus-kill-');
  await accounts(dir, ['sender', 'rcpt']);
  const port = await freePort();
  const child = await startNodeProcess(dir, port);
  const acked = await streamAndKill(port, child, 'rcpt@localhost', 3000, 500);
  assert.ok(acked >= 500, `acked ${acked}`);
  const again = await startNodeProcess(dir, port);
  const got = await collect(port, 'rcpt');
  const missing = [];
  for (let n = 1; n <= acked; n++) if (!got.has(n)) missing.push(n);
  console.log(`offline recipient: ${acked} acknowledged, ${got.size} delivered after restart, ${missing.length} missing`);
  assert.equal(missing, []);
  again.kill('SIGTERM');
  await new Promise((r) => again.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
});

test('recipient online but not reading: every acknowledged message survives kill -9', async () => {
  const dir = tempDir('chorus-kill-');
  await accounts(dir, ['sender', 'slow']);
  const port = await freePort();
  const child = await startNodeProcess(dir, port);
  // The recipient is online with SM and never reads: its TCP window fills up.
  const slow = await rawLogin(port, 'slow', 'stuck');
  slow.send(`<enable xmlns='${SM}'/><presence/>`);
  await slow.waitFor(/<enabled/);
  slow.socket.pause();
  const acked = await streamAndKill(port, child, 'slow@localhost/stuck', 3000, 1000);
  assert.ok(acked >= 1000, `only ${acked} acknowledged before the kill: the test would check nothing`);
  slow.close();
  const again = await startNodeProcess(dir, port);
  const got = await collect(port, 'slow');
  const missing = [];
  for (let n = 1; n <= acked; n++) if (!got.has(n)) missing.push(n);
  console.log(`online, not reading: ${acked} acknowledged, ${got.size} delivered after restart, ${missing.length} missing`);
  assert.equal(missing, []);
  again.kill('SIGTERM');
  await new Promise((r) => again.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
});

// ---- in one process: a recipient that stops reading, a sender that never pauses ----------------------

const acks = (c: RawClient): number[] => [...c.received.matchAll(/<a xmlns="urn:xmpp:sm:3" h="(\d+)"\/>/g)].map((m) => Number(m[1]));

/** Resolves once `ok()` holds, checked on each read from `c`; fails after `ms`. */
function until(c: RawClient, ok: () => boolean, what: string, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ok()) { resolve(); return; }
    const t = setTimeout(() => { c.socket.off('data', check); reject(new Error(`timed out: ${what}`)); }, ms);
    const check = () => { if (ok()) { clearTimeout(t); c.socket.off('data', check); resolve(); } };
    c.socket.on('data', check);
  });
}

/** Sends `total` numbered messages with an <r/> after every tenth, in bursts; then asks until all are acked. */
async function stream(a: RawClient, to: string, total: number, pad = ''): Promise<{ requests: number; acksWhileSending: number }> {
  let requests = 0;
  for (let i = 1; i <= total; i++) {
    a.send(`<message to='${to}' type='chat' id='s${i}'><body>m${i}${pad}</body></message>${i % 10 === 0 ? `<r xmlns='${SM}'/>` : ''}`);
    if (i % 10 === 0) requests++;
    if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  const acksWhileSending = acks(a).length;
  const deadline = Date.now() + 60_000;
  while (Math.max(0, ...acks(a)) < total) {
    assert.ok(Date.now() < deadline, `acked ${Math.max(0, ...acks(a))} of ${total}`);
    await until(a, () => acks(a).length >= requests, `an <a/> for each of ${requests} <r/>`);
    if (Math.max(...acks(a)) < total) { a.send(`<r xmlns='${SM}'/>`); requests++; }
  }
  return { requests, acksWhileSending };
}

test('a recipient that stops reading is dropped and loses nothing: every acknowledged message comes on its next login, once', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.stream_management.max_unacked = 100; c.modules.options = { offline: { max_messages: 10_000 } }; });
  try {
    await s.addUser('sender');
    await s.addUser('slow');
    const slow = await rawLogin(s.port, 'slow', 'stuck');
    slow.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
    await slow.waitFor(/<enabled/);
    slow.socket.pause();
    const a = await rawLogin(s.port, 'sender', 'bulk');
    a.send(`<enable xmlns='${SM}'/>`);
    await a.waitFor(/<enabled/);
    const total = 3000;
    await stream(a, 'slow@localhost/stuck', total);
    slow.close();
    const again = await rawLogin(s.port, 'slow', 'after');
    again.send('<presence/>');
    await until(again, () => new Set(bodies(again.received)).size >= total, `${total} messages on the next login`, 60_000).catch(() => undefined);
    const got = bodies(again.received).map((b) => Number(b.slice(1)));
    const missing = [];
    for (let n = 1; n <= total; n++) if (!got.includes(n)) missing.push(n);
    console.log(`dropped for not reading: ${total} acknowledged, ${new Set(got).size} delivered on the next login, ${missing.length} missing, ${got.length - new Set(got).size} twice`);
    assert.equal(missing, []);
    assert.is(got.length, new Set(got).size, 'none twice');
    a.close(); again.close();
  } finally { await s.stop(); }
});

test('mail a closing session hands back is kept though offline storage is at its limit: accepted is accepted (#30.2)', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.modules.options = { offline: { max_messages: 5 } }; });
  try {
    await s.addUser('sender');
    await s.addUser('phone');
    const phone = await rawLogin(s.port, 'phone', 'stuck');
    phone.send(`<enable xmlns='${SM}'/><presence/>`);
    await phone.waitFor(/<enabled/);
    const sender = await party(s.port, 'sender', 'bulk');
    const total = 30;
    for (let i = 1; i <= total; i++) sender.sends(`<message to='phone@localhost/stuck' type='chat' id='h${i}'><body>m${i}</body></message>`);
    await until(phone, () => bodies(phone.received).length >= total, `${total} messages at the phone`);
    phone.send('</stream:stream>'); // never acknowledged: all of it is handed back as the stream ends
    await phone.waitClosed();
    const again = await rawLogin(s.port, 'phone', 'again');
    again.send('<presence/>');
    await until(again, () => bodies(again.received).length >= total, `${total} messages on the next login`);
    assert.equal(bodies(again.received), Array.from({ length: total }, (_, i) => `m${i + 1}`));
    // nothing bounced to the sender (an error would come before the answer to this)
    await sender.sync('phone@localhost');
    assert.ok(s.logs.some((l) => /offline storage over its limit \(5\): kept message 6, accepted earlier/.test(l)), s.logs.join('\n'));
    sender.close(); again.close();
  } finally { await s.stop(); }
});

test('a recipient without XEP-0198 that stops reading is closed once max_outbound_bytes wait, and loses nothing (#8)', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.limits.max_outbound_bytes = 65_536; c.limits.bytes_per_second = false; c.modules.options = { offline: { max_messages: 10_000 } }; });
  try {
    await s.addUser('sender');
    await s.addUser('deaf');
    const deaf = await rawLogin(s.port, 'deaf', 'tv'); // no <enable/>: nothing is acknowledged end to end
    deaf.send('<presence/>');
    await deaf.waitFor(/<presence from="deaf@localhost\/tv"/);
    deaf.socket.pause();
    const a = await rawLogin(s.port, 'sender', 'bulk');
    a.send(`<enable xmlns='${SM}'/>`);
    await a.waitFor(/<enabled/);
    const pad = 'x'.repeat(8000);
    const total = 600; // ~4.8 MB: more than the kernel's buffers, so the server's own buffer grows
    await stream(a, 'deaf@localhost/tv', total, pad);
    await waitFor(() => s.logs.some((l) => l.includes("the client does not read")), 60_000, "the server to give up on the deaf client");
    // It reads again at once (within the 2 s the server gives a closing stream): whatever the kernel
    // took arrives, then what the server still buffered, then the stream error. What the server had
    // not written yet went back to the account's routing: offline storage.
    deaf.socket.resume();
    await deaf.waitClosed(10_000);
    assert.match(deaf.received, /<policy-violation/);
    const live = bodies(deaf.received).map((b) => Number(b.slice(1, b.indexOf('x') < 0 ? undefined : b.indexOf('x'))));
    const again = await rawLogin(s.port, 'deaf', 'later');
    again.send('<presence/>');
    const stored = () => bodies(again.received).map((b) => Number(b.slice(1, b.indexOf('x') < 0 ? undefined : b.indexOf('x'))));
    await until(again, () => new Set([...live, ...stored()]).size >= total, `all ${total} live or from offline storage`, 60_000).catch(() => undefined);
    const got = new Set([...live, ...stored()]);
    const missing = [];
    for (let n = 1; n <= total; n++) if (!got.has(n)) missing.push(n);
    console.log(`not reading, no XEP-0198: ${live.length} live before the close, ${stored().length} from offline storage, ${missing.length} missing`);
    assert.equal(missing, []);
    a.close(); again.close();
  } finally { await s.stop(); }
});

test('a sender that never pauses gets one <a/> for every <r/>, while it is still sending', async () => {
  // Faster than limits.stanzas_per_second on purpose (that limit has its own test in errors.test.ts);
  // all 3000 fit in rcpt's offline store, so no error comes back for the sender to leave unacked.
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.limits.stanzas_per_second = false; c.modules.options = { offline: { max_messages: 10_000 } }; });
  try {
    await s.addUser('fast');
    await s.addUser('rcpt');
    const a = await rawLogin(s.port, 'fast', 'bulk');
    a.send(`<enable xmlns='${SM}'/>`);
    await a.waitFor(/<enabled/);
    const { requests, acksWhileSending } = await stream(a, 'rcpt@localhost', 3000);
    const h = acks(a);
    console.log(`fast sender: ${requests} <r/>, ${h.length} <a/>, ${acksWhileSending} of them before the last message was sent`);
    assert.is(h.length, requests, 'one <a/> per <r/>');
    assert.ok(acksWhileSending > 0, 'acks arrive while the sender is still sending');
    assert.ok(h.every((v, i) => i === 0 || v >= h[i - 1]!), 'h never goes back');
    a.close();
  } finally { await s.stop(); }
});

test.run();
