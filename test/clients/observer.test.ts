// The web observer (/observer) for the server's admins: raw HTTP for its login and its guards (a
// wrong password, an account that is no admin, an action without the CSRF token), and a real
// browser (Debian's chromium through puppeteer-core) that logs in, watches the live figures, opens
// the session actors and kills one from the page: its supervisor restarts it and the client,
// still connected, gets its next message. CHORUS_SCREENSHOT=FILE saves the page as docs/ shows it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';
import { freePort, friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { accountRequest } from '../../src/cli/accounts.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
const CHROMIUM = '/usr/bin/chromium';

let server: TestServer, base: string, browser: Browser;
test.before(async () => {
  const http = await freePort();
  server = await friendsServer((c) => { c.listen.http = http; c.admins = ['admin@localhost']; });
  for (const u of ['admin', 'carol']) await server.addUser(u, 'pw');
  base = `http://127.0.0.1:${http}`;
});
test.after(async () => { await browser?.close(); await server?.stop(); });

const form = (jid: string, password: string) => fetch(`${base}/observer/login`, {
  method: 'POST', redirect: 'manual', body: new URLSearchParams({ jid, password }).toString(),
  headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
});

test('login: a wrong password and an account that is no admin are refused alike; an admin gets a session cookie, an account with the admin role too', async () => {
  const page = await fetch(`${base}/observer`);
  assert.is(page.status, 200);
  assert.match(await page.text(), /<form method="post" action="\/observer\/login"/);
  for (const [jid, pw] of [['admin@localhost', 'nope'], ['carol@localhost', 'pw'], ['nobody@localhost', 'pw'], ['admin@elsewhere', 'pw']]) {
    const r = await form(jid!, pw!);
    assert.is(r.status, 401, `${jid} ${pw}`);
    assert.match(await r.text(), /not one of the server&apos;s admins|not one of the server's admins/);
  }
  const ok = await form('admin@localhost', 'pw');
  assert.is(ok.status, 303);
  const cookie = ok.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^chorus_observer=[\w-]+; Path=\/observer; HttpOnly; SameSite=Strict/);
  await accountRequest(server.config, 'role', { jid: 'carol@localhost', admin: true });
  assert.is((await form('carol@localhost', 'pw')).status, 303, 'the admin role is an admin here too');
  await accountRequest(server.config, 'role', { jid: 'carol@localhost', admin: false });
});

test('guards: figures and actions need a session; an action needs the CSRF token and our origin', async () => {
  assert.is((await fetch(`${base}/observer/events`)).status, 401);
  assert.is((await fetch(`${base}/observer/kill`, { method: 'POST', body: '{}' })).status, 401);
  const cookie = ((await form('admin@localhost', 'pw')).headers.get('set-cookie') ?? '').split(';')[0]!;
  const html = await (await fetch(`${base}/observer`, { headers: { cookie } })).text();
  const csrf = /<meta name="csrf" content="([\w-]+)">/.exec(html)?.[1];
  assert.ok(csrf, 'the page carries its CSRF token');
  const kill = (headers: Record<string, string>) => fetch(`${base}/observer/kill`, { method: 'POST', headers: { cookie, 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ address: 'user:alice@localhost' }) });
  assert.is((await kill({})).status, 403);
  assert.is((await kill({ 'X-CSRF-Token': 'x'.repeat(csrf!.length) })).status, 403);
  assert.is((await kill({ 'X-CSRF-Token': csrf!, Origin: 'https://evil.example' })).status, 403);
  const none = await kill({ 'X-CSRF-Token': csrf! });
  assert.is(none.status, 400);
  assert.match((await none.json() as { error: string }).error, /no actor user:alice@localhost/);
});

test('chromium: an admin logs in, sees the tree and the live figures, opens the session actors and kills alice\'s; it is restarted and alice stays connected', async () => {
  assert.ok(existsSync(CHROMIUM), 'Debian\'s chromium is not installed (.ci/run installs it)');
  const alice = await login(server.port, 'alice', { password: 'pw', presence: true, resource: 'phone' });
  const bob = await login(server.port, 'bob', { password: 'pw', presence: true, resource: 'desk' });
  try {
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.on('dialog', (d) => void d.accept());
    if (process.env.CHORUS_TEST_LOG) {
      page.on('pageerror', (e) => console.error('[browser error]', e));
      page.on('response', (r) => { if (r.status() >= 400) console.error('[browser]', r.status(), r.url()); });
    }
    await page.goto(`${base}/observer`);
    await page.type('input[name=jid]', 'admin@localhost');
    await page.type('input[name=password]', 'pw');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.waitForFunction('Number(document.body.dataset.samples) >= 2', { timeout: 20_000 });
    const tree = await page.$eval('#tree', (e) => e.textContent ?? '');
    for (const name of ['chorus', 'schedulers', 'sessions', 'listeners']) assert.ok(tree.includes(name), `${name} in the tree: ${tree}`);
    assert.is(await page.$$eval('#schedulers .card', (cards) => cards.length), server.config.schedulers);

    // The session kind, then alice's session actor, killed from the page.
    await page.waitForFunction("[...document.querySelectorAll('#kinds a.kind')].some((a) => a.textContent === 'session')", { timeout: 10_000 });
    await page.evaluate("[...document.querySelectorAll('#kinds a.kind')].find((a) => a.textContent === 'session').click()");
    const address = `session:${alice.jid}`;
    await page.waitForSelector(`button[data-kill="${address}"]`, { timeout: 10_000 });
    if (process.env.CHORUS_SCREENSHOT) {
      // Some history for the sparklines: a minute of samples with messages going both ways.
      for (let i = 0; i < 30; i++) {
        await bob.c.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, `m${i}`)));
        await page.waitForFunction(`Number(document.body.dataset.samples) >= ${3 + i}`, { timeout: 10_000 });
      }
      await page.screenshot({ path: process.env.CHORUS_SCREENSHOT, fullPage: true });
    }
    await page.click(`button[data-kill="${address}"]`);
    await page.waitForFunction("document.getElementById('toast').textContent.startsWith('killed')", { timeout: 10_000 });
    // The crash log shows it, and its supervisor's restarts count it.
    await page.waitForFunction(`document.getElementById('crashes').textContent.includes(${JSON.stringify(address)})`, { timeout: 10_000 });
    await page.waitForFunction("document.getElementById('tree').textContent.match(/sessions.*?(\\d+) restart/)", { timeout: 10_000 });
    // Restarted from its snapshot: alice, still connected, gets bob's next message.
    await bob.c.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'after the kill')));
    await alice.next(isMessage('after the kill'), 15_000);
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test.run();
