// Hot reload of a feature module on a running node (`chorus reload <module>`): an operator's own
// module from `modules.paths` is changed on disk and reloaded on every scheduler; a client connected
// before the reload is answered by the new code on the same stream, and broken code is refused with
// the old code still serving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../../src/cli/admin-client.ts';
import { dataPaths } from '../../src/config/defaults.ts';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { login, xml, type TestClient } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the test node's certificate is self-signed
const src = (f: string) => fileURLToPath(new URL(`../../src/${f}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'chorus-modules-'));
const NS = 'urn:example:greeting';

/** An operator's module: answers `<greeting/>` IQs to the server and declares a disco feature. */
function writeModule(greeting: string, feature: string, broken = false): void {
  writeFileSync(join(dir, 'greeting.ts'), `
import { defineModule } from ${JSON.stringify(src('xmpp/module.ts'))};
import { x } from ${JSON.stringify(src('xml/builder.ts'))};
import { words } from './greeting-words.ts';
export default defineModule({
  name: 'greeting',
  description: 'says hello',
  features: { host: [${JSON.stringify(feature)}] },
  setup(m) {
    m.iq('get', 'host', ${JSON.stringify(NS)}, (iq) => iq.reply(x('greeting', { xmlns: ${JSON.stringify(NS)} }, words(${JSON.stringify(greeting)}))));
  },
})${broken ? ' +++' : ''};
`);
}
// A helper beside it: bundled with the module, so a reload takes its new code too.
const writeHelper = (suffix: string) => writeFileSync(join(dir, 'greeting-words.ts'), `export const words = (s: string): string => s + ${JSON.stringify(suffix)};\n`);

let server: TestServer;
let client: TestClient;
test.before(async () => {
  // ES modules, as Chorus's own: a folder without this is CommonJS, and its imports of Chorus would
  // be second copies (an XmlElement of theirs is not one of ours).
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeModule('hello', 'urn:example:greeting:1');
  writeHelper('!');
  server = await startServer((c) => { c.modules.paths = [dir]; });
  await server.addUser('romeo');
  client = await login(server.port, 'romeo');
});
test.after(async () => {
  await client?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const greet = async (): Promise<string> => (await client.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('greeting', { xmlns: NS })))).getChildText('greeting', NS) ?? '';
const features = async (): Promise<string[]> => (await client.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }))))
  .getChild('query')!.getChildren('feature').map((f) => f.attrs.var as string);

async function request(cmd: string, args: Record<string, unknown>): Promise<unknown> {
  const admin = await AdminClient.connect(dataPaths(server.config).adminSocket);
  assert.ok(admin, 'the node answers on its admin socket');
  try { return await admin!.request(cmd, args); } finally { admin!.close(); }
}
const reload = (name: string) => request('reload', { kind: name });

test('a module changed on disk is reloaded on every scheduler; the connected client gets the new code', async () => {
  assert.is(await greet(), 'hello!');
  assert.ok((await features()).includes('urn:example:greeting:1'));
  writeModule('good evening', 'urn:example:greeting:2');
  writeHelper('.');
  const r = await reload('greeting') as { modules: Array<{ module: string; loads: number }> };
  assert.is(r.modules.length, server.config.schedulers, 'each scheduler reloaded it');
  assert.ok(r.modules.every((m) => m.module === 'greeting' && m.loads === 1));
  // Several IQs: the stream's session may be on either scheduler.
  for (let i = 0; i < 4; i++) assert.is(await greet(), 'good evening.');
  const now = await features();
  assert.ok(now.includes('urn:example:greeting:2') && !now.includes('urn:example:greeting:1'), now.join(' '));
  assert.ok(server.logs.some((l) => l.includes('reload: module greeting')));
});

test('code that does not compile is refused, and the running code keeps answering', async () => {
  writeModule('broken', 'urn:example:greeting:3', true);
  try {
    await reload('greeting');
    assert.unreachable('the reload should fail');
  } catch (e) {
    assert.match((e as Error).message, /greeting/);
  }
  assert.is(await greet(), 'good evening.');
});

test('built-in modules reload too (roster), and keep working', async () => {
  const r = await reload('roster') as { modules: unknown[] };
  assert.is(r.modules.length, server.config.schedulers);
  const roster = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  assert.ok(roster.getChild('query', 'jabber:iq:roster'));
});

test('unload and load: the module\'s answer and feature go and come back; a needed module is not unloaded', async () => {
  await request('unload', { module: 'greeting' });
  const gone = await client.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('greeting', { xmlns: NS }))).catch((e: Error) => e);
  assert.match(String(gone), /service-unavailable/);
  assert.not.ok((await features()).some((f) => f.startsWith('urn:example:greeting')));
  writeModule('hello again', 'urn:example:greeting:4');
  await request('load', { module: 'greeting' });
  assert.is(await greet(), 'hello again.');
  assert.ok((await features()).includes('urn:example:greeting:4'));
  try {
    await request('unload', { module: 'roster' });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /module roster is needed by (blocking, presence|presence, blocking): unload them first/);
  }
  try {
    await request('load', { module: 'greeting' });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /module greeting is already loaded/);
  }
});

test.run();
