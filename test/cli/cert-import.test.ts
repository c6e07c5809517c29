// chorus cert import (#14): from a Let's Encrypt-style live/ folder, each domain the server answers
// for gets the certificate that serves it (a pair whose key is not the certificate's is passed
// over); the node then serves it: a client that trusts the CA connects over Direct TLS.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { once } from 'node:events';
import { chorusCli } from '../helpers/process.ts';
import { startServer } from '../helpers/xmpp.ts';
import { testCa } from '../helpers/test-ca.ts';

test('certificates are found per domain, copied into data_dir/certs/imported, and served', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-certs-'));
  const ca = testCa(['localhost', 'upload.localhost']);
  try {
    const live = join(dir, 'live');
    const put = async (name: string, cert: string, key: string) => {
      await mkdir(join(live, name), { recursive: true });
      await copyFile(cert, join(live, name, 'fullchain.pem'));
      await copyFile(key, join(live, name, 'privkey.pem'));
    };
    await put('localhost', ca.tlsFor('localhost').cert, ca.tlsFor('localhost').key);
    await put('upload.localhost', ca.tlsFor('upload.localhost').cert, ca.tlsFor('upload.localhost').key);
    await put('broken', ca.tlsFor('localhost').cert, ca.tlsFor('upload.localhost').key); // not its key
    const data = join(dir, 'data');
    const cfg = join(dir, 'chorus.yaml');
    await writeFile(cfg, `hosts: [localhost]\ndata_dir: ${data}\nlisten: { address: 127.0.0.1, c2s: false, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }\n`);
    const r = await chorusCli(['cert', 'import', live, '--config', cfg]);
    assert.is(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    for (const [domain, from] of [['localhost', 'localhost'], ['conference.localhost', 'localhost'], ['upload.localhost', 'upload.localhost']]) {
      assert.ok(lines.some((l) => l.startsWith(`imported ${domain} from ${join(live, from!, 'fullchain.pem')} (valid until `)), `${domain}: ${r.out}`);
    }
    const bad = await chorusCli(['cert', 'import', join(dir, 'nowhere'), '--config', cfg]);
    assert.is(bad.code, 1);
    assert.match(bad.err, /nowhere: no such directory/);

    // The node serves the imported certificate (not a generated one): a client trusting the CA connects.
    const server = await startServer((c) => { c.data_dir = data; });
    try {
      const s = connect({ host: '127.0.0.1', port: server.tlsPort, servername: 'localhost', ca: readFileSync(ca.ca), ALPNProtocols: ['xmpp-client'] });
      await once(s, 'secureConnect');
      assert.ok(s.authorized);
      s.destroy();
    } finally {
      await server.stop();
    }
  } finally {
    ca.remove();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
