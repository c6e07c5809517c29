// Ad-hoc commands (XEP-0050) on the real core: the adhoc module running the commands of the admin
// set (XEP-0133) and of a test module, listed by disco, with the errors of XEP-0050 §6. The node's
// operator commands are played by the test (the c2s test runs them on a real node).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import adhoc from '../../src/modules/adhoc.ts';
import admin from '../../src/modules/admin_adhoc.ts';
import disco from '../../src/modules/disco.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { readForm } from '../../src/xmpp/forms.ts';
import { defineModule } from '../../src/xmpp/module.ts';
import { Core } from '../helpers/core.ts';

const ADMIN = 'admin@example.com/a', USER = 'user@example.com/u';
const COUNT = 'urn:example:count';
const errorOf = (e: XmlElement) => e.child('error')?.getChildren().map((c) => c.name).filter((n) => n !== 'text');
const commandOf = (e: XmlElement) => e.child('command', NS.COMMANDS)!;

/** A command any account may run, with a form, that asks the node. */
const counter = defineModule({
  name: 'counter', description: 'a command for tests',
  setup(m) {
    m.command({
      node: COUNT, name: 'Count', access: 'local',
      form: () => ({ fields: [{ var: 'what', type: 'text-single' }] }),
      run: async (c, v) => ({ note: { type: 'info', text: `${c.from.local} counted ${String(await c.operator('count', { what: v.get('what')?.[0] }))}` } }),
    });
  },
});

let asked: Array<Record<string, unknown>> = [];
async function node(): Promise<Core> {
  asked = [];
  const h = await Core.start([disco, adhoc, admin, counter], {
    admins: ['admin@example.com'],
    nodeCommands: {
      count: (args) => { asked.push(args); if (args.what === 'fail') throw new Error('cannot count that'); return 3; },
      actors: () => [{ address: 'session:admin@example.com/a' }, { address: 'session:user@example.com/u' }, { address: 'session:@boot.7' }],
    },
  });
  for (const full of [ADMIN, USER]) h.bind(full);
  await h.settle();
  return h;
}

const execute = (node: string, extra = '', action = 'execute') => `<command xmlns="${NS.COMMANDS}" node="${node}" action="${action}"${extra}/>`;
const submit = (node: string, sid: string, fields: Record<string, string>, action = 'complete') =>
  `<command xmlns="${NS.COMMANDS}" node="${node}" sessionid="${sid}" action="${action}"><x xmlns="jabber:x:data" type="submit">${Object.entries(fields).map(([k, v]) => `<field var="${k}"><value>${v}</value></field>`).join('')}</x></command>`;

test('disco: the server has the commands feature; an admin is listed the admin set and the rest, an account only what it may run', async () => {
  const h = await node();
  const features = (await h.ask(USER, 'get', `<query xmlns="${NS.DISCO_INFO}"/>`, 'example.com')).child('query')!.getChildren('feature').map((f) => f.attr('var'));
  assert.ok(features.includes(NS.COMMANDS));
  const items = async (who: string) => (await h.ask(who, 'get', `<query xmlns="${NS.DISCO_ITEMS}" node="${NS.COMMANDS}"/>`, 'example.com')).child('query')!.getChildren('item').map((i) => i.attr('node'));
  const forAdmin = await items(ADMIN);
  assert.ok(forAdmin.includes('http://jabber.org/protocol/admin#add-user') && forAdmin.includes(COUNT), forAdmin.join());
  assert.equal(await items(USER), [COUNT]);
  const info = (await h.ask(ADMIN, 'get', `<query xmlns="${NS.DISCO_INFO}" node="${COUNT}"/>`, 'example.com')).child('query')!;
  assert.equal(['category', 'type', 'name'].map((a) => info.child('identity')!.attr(a)), ['automation', 'command-node', 'Count']);
  assert.equal(errorOf(await h.ask(USER, 'get', `<query xmlns="${NS.DISCO_INFO}" node="http://jabber.org/protocol/admin#add-user"/>`, 'example.com')), ['forbidden']);
  assert.equal(errorOf(await h.ask(USER, 'get', `<query xmlns="${NS.DISCO_ITEMS}" node="urn:nobody"/>`, 'example.com')), ['item-not-found']);
});

test('execute gives the form and a session; complete with it runs the command, which asks the node', async () => {
  const h = await node();
  const form = commandOf(await h.ask(USER, 'set', execute(COUNT), 'example.com'));
  assert.is(form.attr('status'), 'executing');
  assert.ok(form.child('actions')?.child('complete'));
  assert.equal([...readForm(form)!.values.keys()], ['what']);
  const sid = form.attr('sessionid')!;
  const done = commandOf(await h.ask(USER, 'set', submit(COUNT, sid, { what: 'sheep' }), 'example.com'));
  assert.equal([done.attr('status'), done.attr('sessionid'), done.getChildText('note')], ['completed', sid, 'user counted 3']);
  assert.equal(asked, [{ what: 'sheep' }]);
  // The session is over.
  const again = await h.ask(USER, 'set', submit(COUNT, sid, { what: 'sheep' }), 'example.com');
  assert.equal(errorOf(again), ['bad-request', 'bad-sessionid']);
});

test('a form sent with the first request runs at once; a failing command says why in an error note', async () => {
  const h = await node();
  const r = commandOf(await h.ask(USER, 'set', `<command xmlns="${NS.COMMANDS}" node="${COUNT}"><x xmlns="jabber:x:data" type="submit"><field var="what"><value>fail</value></field></x></command>`, 'example.com'));
  assert.is(r.attr('status'), 'completed');
  assert.is(r.child('note')!.attr('type'), 'error');
  assert.is(r.getChildText('note'), 'cannot count that');
});

test('cancel ends the session; the session outlives a crash of the account\'s actor', async () => {
  const h = await node();
  const sid = commandOf(await h.ask(USER, 'set', execute(COUNT), 'example.com')).attr('sessionid')!;
  h.crash('user');
  await h.settle();
  assert.is(commandOf(await h.ask(USER, 'set', execute(COUNT, ` sessionid="${sid}"`, 'cancel'), 'example.com')).attr('status'), 'canceled');
  assert.equal(errorOf(await h.ask(USER, 'set', submit(COUNT, sid, { what: 'x' }), 'example.com')), ['bad-request', 'bad-sessionid']);
});

test('errors: no node, an unknown node, an admin command for an account, prev/next, complete without the form', async () => {
  const h = await node();
  assert.equal(errorOf(await h.ask(USER, 'set', `<command xmlns="${NS.COMMANDS}"/>`, 'example.com')), ['bad-request']);
  assert.equal(errorOf(await h.ask(USER, 'set', execute('urn:nobody'), 'example.com')), ['item-not-found']);
  assert.equal(errorOf(await h.ask(USER, 'set', execute('http://jabber.org/protocol/admin#delete-user'), 'example.com')), ['forbidden']);
  const sid = commandOf(await h.ask(USER, 'set', execute(COUNT), 'example.com')).attr('sessionid')!;
  assert.equal(errorOf(await h.ask(USER, 'set', execute(COUNT, ` sessionid="${sid}"`, 'next'), 'example.com')), ['bad-request', 'bad-action']);
  assert.equal(errorOf(await h.ask(USER, 'set', execute(COUNT, ` sessionid="${sid}"`, 'complete'), 'example.com')), ['bad-request', 'bad-payload']);
  assert.equal(h.unanswered(), []);
});

test('admin set: the online list and count come from the bound sessions of this host; an announcement reaches each of them', async () => {
  const h = await node();
  const run = async (name: string, fields: Record<string, string>) => {
    const node = `http://jabber.org/protocol/admin#${name}`;
    const first = commandOf(await h.ask(ADMIN, 'set', execute(node), 'example.com'));
    if (first.attr('status') === 'completed') return first;
    return commandOf(await h.ask(ADMIN, 'set', submit(node, first.attr('sessionid')!, fields), 'example.com'));
  };
  assert.equal(readForm(await run('get-online-users-list', { max_items: 'all' }))!.values.get('onlineuserjids'), ['admin@example.com', 'user@example.com']);
  assert.equal(readForm(await run('get-online-users-num', {}))!.values.get('onlineusersnum'), ['2']);
  assert.equal(readForm(await run('user-stats', { accountjid: 'user@example.com' }))!.values.get('onlineresources'), ['u']);
  h.clear();
  assert.is((await run('announce', { subject: 'Maintenance', announcement: 'Back at noon' })).getChildText('note'), 'sent to 2 sessions');
  const got = h.take(USER).filter((e) => e.name === 'message');
  assert.equal(got.map((e) => [e.attr('from'), e.attr('type'), e.getChildText('subject'), e.getChildText('body')]), [['example.com', 'headline', 'Maintenance', 'Back at noon']]);
  const refused = await run('add-user', { accountjid: 'someone@elsewhere.org', password: 'x', 'password-verify': 'x' });
  assert.is(refused.child('note')!.attr('type'), 'error');
  assert.match(refused.getChildText('note')!, /not an account of example\.com/);
});

test.run();
