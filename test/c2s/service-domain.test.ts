// Service domains: a module declares a domain it serves on a host and the actor kind of its
// addresses (here an operator's own module folder with its kind, test/fixtures/service-module); the
// host's disco#items lists the domain, and stanzas to its addresses reach one actor per address, which
// keeps its own state. Routing knows no service by name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chorusCli } from '../helpers/process.ts';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { party, type Party } from '../helpers/transcript.ts';

const MODULES = fileURLToPath(new URL('../fixtures/service-module', import.meta.url));
let server: TestServer;
let alice: Party;
test.before(async () => {
  server = await startServer((c) => {
    c.c2s_require_encryption = false;
    c.modules.paths = [MODULES];
    c.modules.disabled = [...c.modules.disabled, 'mam']; // the echoes as sent, with no archive's stanza-id
  });
  await server.addUser('alice');
  alice = await party(server.port, 'alice', 'a');
});
test.after(async () => { alice.close(); await server.stop(); });

test('the host lists the service domains in its disco#items (group chat and file sharing are on by default)', async () => {
  alice.sends(`<iq to='localhost' type='get' id='i1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`);
  await alice.receives(`<iq from='localhost' to='alice@localhost/a' id='i1' type='result'><query xmlns='http://jabber.org/protocol/disco#items'><item jid='conference.localhost' name='Chatrooms'/><item jid='upload.localhost' name='File sharing'/><item jid='echo.localhost' name='Echo'/></query></iq>`);
});

test('each address of the service is an actor of the kind the module named, with its own state', async () => {
  alice.sends(`<message to='one@echo.localhost' type='chat' id='e1'><body>hi</body></message>`);
  await alice.receives(`<message from='one@echo.localhost' to='alice@localhost/a' type='chat' id='e1'><body>echo 1: hi</body></message>`);
  alice.sends(`<message to='one@echo.localhost' type='chat' id='e2'><body>again</body></message>`);
  await alice.receives(`<message from='one@echo.localhost' to='alice@localhost/a' type='chat' id='e2'><body>echo 2: again</body></message>`);
  alice.sends(`<message to='two@echo.localhost/x' type='chat' id='e3'><body>other</body></message>`);
  await alice.receives(`<message from='two@echo.localhost' to='alice@localhost/a' type='chat' id='e3'><body>echo 1: other</body></message>`);
  // the domain itself is an address of the service too
  alice.sends(`<message to='echo.localhost' type='chat' id='e4'><body>service</body></message>`);
  await alice.receives(`<message from='echo.localhost' to='alice@localhost/a' type='chat' id='e4'><body>echo 1: service</body></message>`);
});

test("an operator command of the module's own folder: chorus finds it through the config's modules.paths and asks the actor", async () => {
  const config = join(server.config.data_dir, 'chorus.yaml');
  await writeFile(config, `hosts: [localhost]\ndata_dir: ${server.config.data_dir}\nmodules: { paths: [${MODULES}] }\n`);
  const help = await chorusCli(['--help', '--config', config]);
  assert.match(help.out, /echoes +how many messages an address of the echo service has answered/);
  const r = await chorusCli(['echoes', 'one@echo.localhost', '--json', `--config=${config}`]);
  assert.is(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out), { answered: 2 });
});

test.run();
