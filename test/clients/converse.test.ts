// A real web client in a real browser: Converse.js (the npm package, served from this test) in
// Debian's chromium, driven by puppeteer-core, logs in to Chorus over WebSocket (RFC 7395) and
// exchanges messages with a TCP client; what bob sent shows in Converse's chat view. Another
// Converse (its own browser context) logs in over BOSH (XEP-0206) and chats the same way.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { freePort, friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
const CHROMIUM = '/usr/bin/chromium';
const DIST = fileURLToPath(new URL('../../node_modules/converse.js/dist/', import.meta.url));
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm', '.svg': 'image/svg+xml', '.woff2': 'font/woff2', '.mp3': 'audio/mpeg', '.ogg': 'audio/ogg' };

let server: TestServer, web: Server, browser: Browser, page: Page;

/** The page: Converse logging in on Chorus's WebSocket or BOSH endpoint; a plugin keeps what the test reads. */
const page_html = (connection: string, jid: string) => `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/dist/converse.min.css"></head><body><script type="module">
import converse from '/dist/converse.min.js';
window.received = [];
converse.plugins.add('chorus-test', { initialize() {
  const c = this._converse;
  window.chorus = c;
  c.api.listen.on('connected', () => { window.connected = true; });
  c.api.listen.on('message', (data) => { if (data.attrs && data.attrs.body) window.received.push(data.attrs.body); });
} });
converse.initialize({
  assets_path: '/dist/', ${connection}, discover_connection_methods: false,
  jid: '${jid}', password: 'pw', auto_login: true, view_mode: 'fullscreen',
  whitelisted_plugins: ['chorus-test'], play_sounds: false, show_desktop_notifications: false, loglevel: '${process.env.CONVERSE_LOG ?? 'warn'}',
});
</script></body></html>`;

test.before(async () => {
  assert.ok(existsSync(CHROMIUM), 'Debian\'s chromium is not installed (.ci/run installs it)');
  const http = await freePort();
  server = await friendsServer((c) => { c.listen.http = http; });
  const pages: Record<string, string> = {
    '/': page_html(`websocket_url: 'ws://127.0.0.1:${http}/xmpp-websocket'`, 'alice@localhost/browser'),
    '/bosh': page_html(`bosh_service_url: 'http://127.0.0.1:${http}/http-bind'`, 'bob@localhost/bosh'),
  };
  web = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const html = pages[path];
    if (html) { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(html); return; }
    const file = normalize(join(DIST, path.replace(/^\/dist\//, '')));
    if (!path.startsWith('/dist/') || !file.startsWith(DIST)) { res.writeHead(404); res.end(); return; }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch { res.writeHead(404); res.end(); }
  });
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage();
  if (process.env.CHORUS_TEST_LOG) {
    page.on('console', (m) => console.error(`[browser] ${m.text()}`));
    page.on('pageerror', (e) => console.error(`[browser error] ${e}`));
    page.on('requestfailed', (r) => console.error(`[browser request failed] ${r.url()}`));
    page.on('response', (r) => { if (r.status() >= 400) console.error(`[browser ${r.status()}] ${r.url()}`); });
  }
});
test.after(async () => {
  await browser?.close();
  web?.close();
  await server?.stop();
});

test('Converse.js in chromium logs in over WebSocket, receives a message from a TCP client and shows it, and answers', async () => {
  const { port } = web.address() as { port: number };
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction('window.connected === true', { timeout: 30_000 });
  assert.ok(server.logs.some((l) => l.includes('login: user=alice@localhost')), 'alice logged in on the node');
  const bob = await login(server.port, 'bob', { password: 'pw', presence: true });
  // Seen once in a clean-clone CI run, not since: bob got nothing at all (not the answer, not a
  // presence). If it comes again, the failure says whether his client reconnected and what the node logged.
  const reconnects: string[] = [];
  bob.c.on('offline', () => reconnects.push('offline'));
  bob.c.on('online', () => reconnects.push('online'));
  try {
    await bob.c.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'hello from bob')));
    await page.waitForFunction("window.received.includes('hello from bob')", { timeout: 15_000 });
    // Converse's own chat view shows it, and what alice sends goes out through Converse's stack.
    await page.evaluate("window.chorus.api.chats.open('bob@localhost').then((chat) => chat.sendMessage({ body: 'hello from the browser' }))");
    await page.waitForFunction("document.body.innerText.includes('hello from bob')", { timeout: 15_000 });
    const got = await bob.next(isMessage('hello from the browser'), 15_000).catch((e: Error) => {
      throw new Error(`${e.message}\nbob's client: ${reconnects.join(', ') || 'no reconnect'}\nnode log (last 40):\n${server.logs.slice(-40).join('\n')}`);
    });
    assert.match(String(got.attrs.from), /^alice@localhost\/browser/);
  } finally {
    await bob.c.stop();
  }
});

test('Converse.js in chromium logs in over BOSH, receives a message from a TCP client and answers', async () => {
  const { port } = web.address() as { port: number };
  const context = await browser.createBrowserContext();
  try {
    const bosh = await context.newPage();
    await bosh.goto(`http://127.0.0.1:${port}/bosh`);
    await bosh.waitForFunction('window.connected === true', { timeout: 30_000 });
    const alice = await login(server.port, 'alice', { password: 'pw', presence: true, resource: 'tcp' });
    try {
      await alice.c.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'hello over bosh')));
      await bosh.waitForFunction("window.received.includes('hello over bosh')", { timeout: 15_000 });
      await bosh.evaluate("window.chorus.api.chats.open('alice@localhost').then((chat) => chat.sendMessage({ body: 'answer over bosh' }))");
      const got = await alice.next(isMessage('answer over bosh'), 15_000);
      assert.match(String(got.attrs.from), /^bob@localhost\/bosh/);
    } finally {
      await alice.c.stop();
    }
  } finally {
    await context.close();
  }
});

test.run();
