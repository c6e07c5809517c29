// Where a remote domain's server is (src/net/dialer.ts): the config's static hosts first, then DNS
// SRV records of both services (XEP-0368) in RFC 2782 order, then the domain itself on 5269.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { orderSrv, targetsOf } from '../../src/net/dialer.ts';

const srv = (name: string, port: number, priority: number, weight: number) => ({ name, port, priority, weight });
const noDns = (code: string) => async () => { throw Object.assign(new Error(code), { code }); };

test('s2s.hosts wins over DNS; tls:// there means Direct TLS', async () => {
  const t = await targetsOf('b.example', { hosts: { 'b.example': { host: '127.0.0.1', port: 15269 } } }, async () => { throw new Error('DNS asked'); });
  assert.equal(t, [{ host: '127.0.0.1', port: 15269, directTls: false }]);
  const d = await targetsOf('b.example', { hosts: { 'b.example': { host: '127.0.0.1', port: 15270, directTls: true } } }, async () => { throw new Error('DNS asked'); });
  assert.equal(d, [{ host: '127.0.0.1', port: 15270, directTls: true }]);
});

/** A resolver that knows SRV records by name; a name it does not know has none (ENOTFOUND). */
const zone = (records: Record<string, ReturnType<typeof srv>[]>) => async (name: string) => {
  const r = records[name];
  if (!r) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
  return r.map((x) => ({ ...x }));
};

test('SRV records by priority, then by weight; without records the domain on 5269; a "." target is no service', async () => {
  const records = [srv('c.example', 5269, 20, 0), srv('a.example', 5270, 10, 0), srv('b.example', 5271, 10, 100)];
  const t = await targetsOf('x.example', { hosts: {} }, zone({ '_xmpp-server._tcp.x.example': records }));
  // Weight 0 beside weight 100 in one priority: the weighted one always comes first (RFC 2782).
  assert.equal(t, [{ host: 'b.example', port: 5271, directTls: false }, { host: 'a.example', port: 5270, directTls: false }, { host: 'c.example', port: 5269, directTls: false }]);
  assert.equal(orderSrv(records, () => 0).map((r) => r.name), ['b.example', 'a.example', 'c.example']);
  assert.equal(orderSrv(records, () => 0.999).map((r) => r.name), ['b.example', 'a.example', 'c.example']);
  assert.equal(orderSrv([srv('p', 1, 0, 0), srv('q', 1, 0, 0)], () => 0.5).map((r) => r.name), ['p', 'q'], 'weights all 0: in order');
  assert.equal(await targetsOf('y.example', { hosts: {} }, noDns('ENOTFOUND')), [{ host: 'y.example', port: 5269, directTls: false }]);
  assert.equal(await targetsOf('y.example', { hosts: {} }, noDns('ENODATA')), [{ host: 'y.example', port: 5269, directTls: false }]);
  try {
    await targetsOf('z.example', { hosts: {} }, zone({ '_xmpp-server._tcp.z.example': [srv('.', 0, 0, 0)] }));
    assert.unreachable('a "." target means no service');
  } catch (e) { assert.match((e as Error).message, /no XMPP server service/); }
  try {
    await targetsOf('z.example', { hosts: {} }, noDns('ETIMEOUT'));
    assert.unreachable('a DNS failure is not "no records"');
  } catch (e) { assert.match((e as Error).message, /DNS: ETIMEOUT/); }
});

test('XEP-0368: _xmpps-server (Direct TLS) and _xmpp-server (STARTTLS) records in one order by priority', async () => {
  const t = await targetsOf('m.example', { hosts: {} }, zone({
    '_xmpps-server._tcp.m.example': [srv('tls.m.example', 5270, 5, 0), srv('late.m.example', 443, 30, 0)],
    '_xmpp-server._tcp.m.example': [srv('xmpp.m.example', 5269, 10, 0)],
  }));
  assert.equal(t, [
    { host: 'tls.m.example', port: 5270, directTls: true }, { host: 'xmpp.m.example', port: 5269, directTls: false }, { host: 'late.m.example', port: 443, directTls: true },
  ]);
  // Only Direct TLS published: no fallback to 5269; one service saying "." leaves the other.
  assert.equal(await targetsOf('n.example', { hosts: {} }, zone({ '_xmpps-server._tcp.n.example': [srv('n.example', 5270, 0, 0)] })), [{ host: 'n.example', port: 5270, directTls: true }]);
  assert.equal(await targetsOf('o.example', { hosts: {} }, zone({ '_xmpps-server._tcp.o.example': [srv('.', 0, 0, 0)], '_xmpp-server._tcp.o.example': [srv('o.example', 5269, 0, 0)] })),
    [{ host: 'o.example', port: 5269, directTls: false }]);
});

test.run();
