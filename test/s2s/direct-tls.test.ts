// Federation over Direct TLS (XEP-0368): servers that listen on listen.s2s_direct_tls take TLS from
// the first byte (ALPN xmpp-server), and a link whose s2s.hosts entry says tls:// (or whose SRV
// records are _xmpps-server) dials that way. Certificates a test CA signed prove c.test and d.test
// by SASL EXTERNAL; e.test's self-signed one does not, so e.test authenticates by dialback, still
// over Direct TLS.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect } from 'node:net';
import { once } from 'node:events';
import { createAccount } from '../../src/storage/accounts.ts';
import { freePort, RawClient, startServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { testCa, type TestCa } from '../helpers/test-ca.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const DOMAINS = ['c.test', 'd.test', 'e.test'] as const;
type Domain = (typeof DOMAINS)[number];
let ca: TestCa;
const servers = {} as Record<Domain, TestServer>;
const direct = {} as Record<Domain, number>;

test.before(async () => {
  ca = testCa(['c.test', 'd.test']);
  for (const d of DOMAINS) direct[d] = await freePort();
  const hosts = Object.fromEntries(DOMAINS.map((d) => [d, { host: '127.0.0.1', port: direct[d], directTls: true }]));
  const start = async (d: Domain) => {
    const s2s = await freePort();
    servers[d] = await startServer((c) => {
      c.hosts = [d];
      c.listen.s2s = s2s;
      c.listen.s2s_direct_tls = direct[d];
      c.s2s.hosts = hosts;
      c.s2s.ca_file = ca.ca;
      if (d !== 'e.test') c.tls = { [d]: ca.tlsFor(d) };
    });
    await createAccount(servers[d].node.runtime.db, `user@${d}`, 'pw', { iterations: 4096 });
  };
  await Promise.all(DOMAINS.map(start));
});
test.after(async () => {
  await Promise.all(DOMAINS.map((d) => servers[d]?.stop()));
  ca?.remove();
});

async function chat(from: Domain, to: Domain, text: string): Promise<void> {
  const a = await login(servers[from].port, 'user', { password: 'pw', domain: from, presence: true });
  const b = await login(servers[to].port, 'user', { password: 'pw', domain: to, presence: true });
  try {
    await a.c.send(xml('message', { to: `user@${to}`, type: 'chat' }, xml('body', {}, text)));
    await b.next(isMessage(text), 15_000);
    await b.c.send(xml('message', { to: a.jid, type: 'chat' }, xml('body', {}, `re: ${text}`)));
    await a.next(isMessage(`re: ${text}`), 15_000);
  } finally {
    await a.c.stop();
    await b.c.stop();
  }
}

test('certificates over Direct TLS: both links authenticate by SASL EXTERNAL, with no STARTTLS', async () => {
  await chat('c.test', 'd.test', 'direct hello');
  for (const [from, to] of [['c.test', 'd.test'], ['d.test', 'c.test']] as const) {
    assert.ok(servers[from].logs.some((l) => l.includes(`s2s ${from} → ${to}: up (certificate, SASL EXTERNAL, Direct TLS)`)), `${from} → ${to}: ${servers[from].logs.join('\n')}`);
    const links = await servers[from].admin('s2s') as Array<Record<string, unknown>>;
    const link = links.find((l) => l.link === `${from} → ${to}`);
    assert.equal({ state: link?.state, transport: link?.transport, authenticated: link?.authenticated, peerCertificate: link?.peerCertificate },
      { state: 'up', transport: 'Direct TLS', authenticated: 'certificate (SASL EXTERNAL)', peerCertificate: 'proves the domain' });
  }
});

test('a certificate that proves nothing: that server authenticates by dialback over Direct TLS; the other way, by certificate', async () => {
  await chat('c.test', 'e.test', 'dialback over direct TLS');
  // e.test trusts the CA that signed c.test's certificate; c.test cannot verify e.test's self-signed one.
  assert.ok(servers['c.test'].logs.some((l) => l.includes('s2s c.test → e.test: up (certificate, SASL EXTERNAL, Direct TLS)')), servers['c.test'].logs.join('\n'));
  assert.ok(servers['e.test'].logs.some((l) => l.includes('s2s e.test → c.test: up (dialback, Direct TLS)')), servers['e.test'].logs.join('\n'));
});

test('the Direct TLS port: ALPN xmpp-server, no STARTTLS offered; plaintext there is refused without harm', async () => {
  const socket = tlsConnect({ host: '127.0.0.1', port: direct['e.test'], servername: 'e.test', ALPNProtocols: ['xmpp-server'], rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  assert.is((socket as TLSSocket).alpnProtocol, 'xmpp-server');
  const raw = RawClient.wrap(socket);
  try {
    raw.send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='c.test' to='e.test' version='1.0'>");
    const features = await raw.waitFor(/<\/stream:features>/);
    assert.not.match(features, /starttls/);
    assert.match(features, /urn:xmpp:features:dialback/);
  } finally { raw.close(); }
  // A peer that speaks plaintext XML to the TLS port: its handshake fails, the node goes on.
  const plain = connect({ host: '127.0.0.1', port: direct['e.test'] });
  plain.on('error', () => undefined);
  await once(plain, 'connect');
  plain.write("<stream:stream xmlns='jabber:server' to='e.test' version='1.0'>");
  await once(plain, 'close');
  await chat('e.test', 'c.test', 'still up');
});

test.run();
