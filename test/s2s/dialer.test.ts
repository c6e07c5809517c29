// Where a remote domain's server is (src/net/dialer.ts): the config's static hosts first, then DNS
// SRV records in RFC 2782 order, then the domain itself on 5269.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { orderSrv, targetsOf } from '../../src/net/dialer.ts';

const srv = (name: string, port: number, priority: number, weight: number) => ({ name, port, priority, weight });
const noDns = (code: string) => async () => { throw Object.assign(new Error(code), { code }); };

test('s2s.hosts wins over DNS', async () => {
  const t = await targetsOf('b.example', { hosts: { 'b.example': { host: '127.0.0.1', port: 15269 } } }, async () => { throw new Error('DNS asked'); });
  assert.equal(t, [{ host: '127.0.0.1', port: 15269 }]);
});

test('SRV records by priority, then by weight; without records the domain on 5269; a "." target is no service', async () => {
  const records = [srv('c.example', 5269, 20, 0), srv('a.example', 5270, 10, 0), srv('b.example', 5271, 10, 100)];
  const t = await targetsOf('x.example', { hosts: {} }, async () => records.map((r) => ({ ...r })));
  // Weight 0 beside weight 100 in one priority: the weighted one always comes first (RFC 2782).
  assert.equal(t, [{ host: 'b.example', port: 5271 }, { host: 'a.example', port: 5270 }, { host: 'c.example', port: 5269 }]);
  assert.equal(orderSrv(records, () => 0).map((r) => r.name), ['b.example', 'a.example', 'c.example']);
  assert.equal(orderSrv(records, () => 0.999).map((r) => r.name), ['b.example', 'a.example', 'c.example']);
  assert.equal(orderSrv([srv('p', 1, 0, 0), srv('q', 1, 0, 0)], () => 0.5).map((r) => r.name), ['p', 'q'], 'weights all 0: in order');
  assert.equal(await targetsOf('y.example', { hosts: {} }, noDns('ENOTFOUND')), [{ host: 'y.example', port: 5269 }]);
  assert.equal(await targetsOf('y.example', { hosts: {} }, noDns('ENODATA')), [{ host: 'y.example', port: 5269 }]);
  try {
    await targetsOf('z.example', { hosts: {} }, async () => [srv('.', 0, 0, 0)]);
    assert.unreachable('a "." target means no service');
  } catch (e) { assert.match((e as Error).message, /no XMPP server service/); }
  try {
    await targetsOf('z.example', { hosts: {} }, noDns('ETIMEOUT'));
    assert.unreachable('a DNS failure is not "no records"');
  } catch (e) { assert.match((e as Error).message, /DNS: ETIMEOUT/); }
});

test.run();
