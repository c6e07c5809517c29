// The user actor's step as data: a context and a message in, the next context and the effects out,
// with no runtime (actors/user/index.ts `step`). What the account does with its sessions (bind,
// conflicts, the session limit, monitors) and the RFC 6121 §8.5 routing decisions, read as effects.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import userKind, { step, type Outcome, type UserEvent } from '../../actors/user/index.ts';
import { initialUserContext, type UserCtx } from '../../actors/user/core.ts';
import type { UserEffect } from '../../actors/user/effects.ts';
import { OWN_STANZA, validateStanza } from '../../src/xml/framer.ts';
import { parseElement } from '../../src/xml/element.ts';
import type { SessionInfo } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { xmppService, type XmppSettings } from '../../src/xmpp-service.ts';

const HOST = 'example.com';
const env = (sessionsPerAccount = 10) => {
  const settings: XmppSettings = {
    hosts: [HOST], admins: [], requireEncryption: false, sasl2: false, fastTokenDays: 21, components: {}, sessionsPerAccount, maxStanzaBytes: 262_144, serverSecret: 'test',
    loginAttempts: { maxFailures: 5, windowSeconds: 60, addressMaxFailures: 20, addressWindowSeconds: 60 }, federation: null, bootId: 'test',
    modules: { enabled: [], disabled: [], options: {} }, dataDir: '/nonexistent', web: { http: false, https: false },
  };
  return xmppService(settings, new ModuleSet([HOST]), new Map());
};

function run(ctx: UserCtx, event: UserEvent, from?: string, sessionsPerAccount?: number): Outcome {
  const o = step(env(sessionsPerAccount), ctx, event, from);
  if (o instanceof Promise) throw new Error('no module here waits');
  if (o.error) throw o.error;
  return o;
}

const alice = () => initialUserContext('user:alice@example.com');
const session = (resource: string, o: Partial<SessionInfo> = {}): SessionInfo =>
  ({ resource, address: `session:alice@example.com/${resource}`, presence: null, priority: 0, since: 0, interested: false, ...o });
const online = (resource: string, priority = 0): SessionInfo => session(resource, { presence: '<presence/>', priority, since: 1 });
const withSessions = (...ss: SessionInfo[]): UserCtx => ({ ...alice(), sessions: Object.fromEntries(ss.map((s) => [s.resource, s])) });
const stanza = (xml: string) => ({ xml, h: validateStanza(xml, undefined, OWN_STANZA) });
const kinds = (fx: UserEffect[]) => fx.map((e) => e.do);

test('a bind: the session is told under the name it asked with, and watched from then on', () => {
  const o = run(alice(), { type: 'bind', resource: 'phone', session: 'session:alice@example.com/phone' }, 'session:pre.1');
  assert.equal(o.effects, [
    { do: 'tell', to: 'session:pre.1', msg: { type: 'bind-ok', resource: 'phone' } },
    { do: 'watch', address: 'session:pre.1', tag: 1 },
  ]);
  assert.is(o.context.sessions.phone.address, 'session:alice@example.com/phone');
  assert.equal(o.context.watch, { phone: 1 });
});

test('a conflict: the old session is replaced and the new bind waits for its end; a stale down changes nothing', () => {
  const bound = run(alice(), { type: 'bind', resource: 'phone', session: 'session:alice@example.com/phone' }, 'session:pre.1').context;
  const o = run(bound, { type: 'bind', resource: 'phone', session: 'session:alice@example.com/phone' }, 'session:pre.2');
  assert.equal(o.effects, [
    { do: 'tell', to: 'session:alice@example.com/phone', msg: { type: 'replace' } },
    { do: 'watch', address: 'session:alice@example.com/phone', tag: 2 },
  ]);
  assert.equal(o.context.replacing, { 2: 'phone' });
  // The old session's first monitor (tag 1) reports too: it is no longer the resource's.
  const stale = run(o.context, { type: 'runtime.down', address: 'session:alice@example.com/phone', ref: 11, reason: 'normal', tag: 1 });
  assert.equal(stale.effects, []);
  assert.is(stale.context, o.context);
  const done = run(o.context, { type: 'runtime.down', address: 'session:alice@example.com/phone', ref: 12, reason: 'normal', tag: 2 });
  assert.equal(done.effects, [
    { do: 'tell', to: 'session:pre.2', msg: { type: 'bind-ok', resource: 'phone' } },
    { do: 'watch', address: 'session:pre.2', tag: 3 },
  ]);
  assert.equal(done.context.replacing, {});
  assert.equal(done.context.watch, { phone: 3 });
});

test('the session limit: a live account refuses the login; a detached session gives way', () => {
  const live = withSessions(online('phone'));
  const refused = run(live, { type: 'bind', resource: 'laptop', session: 'session:alice@example.com/laptop' }, 'session:pre.3', 1);
  assert.equal(refused.effects, [{ do: 'tell', to: 'session:pre.3', msg: { type: 'bind-denied', condition: 'resource-constraint', text: 'at most 1 sessions per account' } }]);
  assert.is(refused.context, live);
  const away = withSessions(session('phone', { detached: 5 }));
  const o = run(away, { type: 'bind', resource: 'laptop', session: 'session:alice@example.com/laptop' }, 'session:pre.4', 1);
  assert.equal(kinds(o.effects), ['log', 'tell', 'tell', 'watch']);
  assert.equal(o.effects[1], { do: 'tell', to: 'session:alice@example.com/phone', msg: { type: 'replace' } });
  assert.equal(o.effects[2], { do: 'tell', to: 'session:pre.4', msg: { type: 'bind-ok', resource: 'laptop' } });
});

test('a watched session crashes: looked at again later; it ends: unbound', () => {
  const ctx = { ...withSessions(online('phone')), watch: { phone: 4 }, tags: 4 };
  const crashed = run(ctx, { type: 'runtime.down', address: 'session:alice@example.com/phone', ref: 1, reason: 'boom', tag: 4 });
  assert.equal(crashed.effects, [{ do: 'timer', name: 'recheck:phone', ms: 5000, msg: { type: 'arrived', resource: 'phone' } }]);
  assert.is(crashed.context, ctx);
  const ended = run(ctx, { type: 'runtime.down', address: 'session:alice@example.com/phone', ref: 1, reason: 'normal', tag: 4 });
  assert.equal(ended.effects, []);
  assert.equal(ended.context.sessions, {});
  assert.equal(ended.context.watch, {});
});

test('a chat message to the bare JID: the highest priority gets it; on a tie each resource, one copy durable, one fan-out stamp', () => {
  const msg = stanza("<message from='bob@example.com/x' to='alice@example.com' type='chat' id='m1'><body>hi</body></message>");
  const one = run(withSessions(online('phone', 5), online('laptop', 1)), { type: 'stanza', ...msg });
  assert.equal(one.effects, [{ do: 'deliver', to: 'session:alice@example.com/phone', xml: msg.xml, durable: true, sent: undefined }]);
  const tie = run(withSessions(online('phone', 1), online('laptop', 1), online('away', -1)), { type: 'stanza', ...msg });
  const d = tie.effects as Array<Extract<UserEffect, { do: 'deliver' }>>;
  assert.equal(d.map((e) => [e.to, e.durable]), [['session:alice@example.com/phone', true], ['session:alice@example.com/laptop', false]]);
  assert.ok(d[0].sent !== undefined && d[0].sent === d[1].sent);
});

test('a message with nobody online and no offline storage: service-unavailable back to the sender', () => {
  const msg = stanza("<message from='bob@example.com/x' to='alice@example.com' type='chat' id='m2'><body>hi</body></message>");
  const o = run(alice(), { type: 'stanza', ...msg });
  assert.equal(kinds(o.effects), ['route']);
  const err = parseElement((o.effects[0] as Extract<UserEffect, { do: 'route' }>).xml);
  assert.is(err.attr('type'), 'error');
  assert.is(err.attr('to'), 'bob@example.com/x');
  assert.ok(err.child('error')!.child('service-unavailable'));
});

test("a client's message: to a local account into its durable mailbox (handled once there); to a remote domain answered, then handled", () => {
  const ctx = withSessions(online('phone'));
  const local = stanza("<message from='alice@example.com/phone' to='bob@example.com' type='chat' id='c1'><body>hi</body></message>");
  const o = run(ctx, { type: 'client', ...local, resource: 'phone', conn: 'conn:1', seq: 1, done: 0 });
  assert.equal(o.effects, [{ do: 'durable', to: 'user:bob@example.com', xml: local.xml, h: local.h, then: { conn: 'conn:1', seq: 1 } }]);
  const remote = stanza("<message from='alice@example.com/phone' to='carol@elsewhere.example' type='chat' id='c2'><body>hi</body></message>");
  const r = run(ctx, { type: 'client', ...remote, resource: 'phone', conn: 'conn:1', seq: 2, done: 0 });
  assert.equal(kinds(r.effects), ['deliver', 'handled']);
  const err = parseElement((r.effects[0] as Extract<UserEffect, { do: 'deliver' }>).xml);
  assert.ok(err.child('error')!.child('remote-server-not-found'));
  assert.equal(r.effects[1], { do: 'handled', client: { conn: 'conn:1', seq: 2 } });
  // Sent again after a restart (the connection replays what it has not seen handled): taken once.
  assert.equal(run(ctx, { type: 'client', ...remote, resource: 'phone', conn: 'conn:1', seq: 2, done: 0 }).effects, []);
  // A replay may come after later stanzas (a thread died with some on their way): an earlier seq not
  // taken yet is taken then; up to the connection's watermark everything is handled already.
  assert.equal(kinds(run(ctx, { type: 'client', ...remote, resource: 'phone', conn: 'conn:1', seq: 9, done: 0 }).effects), ['deliver', 'handled']);
  assert.equal(kinds(run(ctx, { type: 'client', ...remote, resource: 'phone', conn: 'conn:1', seq: 7, done: 0 }).effects), ['deliver', 'handled']);
  assert.equal(run(ctx, { type: 'client', ...remote, resource: 'phone', conn: 'conn:1', seq: 8, done: 9 }).effects, []);
});

test('the account deleted: every session kicked, whoever asked told, the actor ends', () => {
  const o = run(withSessions(online('phone'), online('laptop')), { type: 'delete', reply: 'admin:1' });
  assert.equal(o.effects, [
    { do: 'tell', to: 'session:alice@example.com/phone', msg: { type: 'kick', condition: 'not-authorized', text: 'account deleted' } },
    { do: 'tell', to: 'session:alice@example.com/laptop', msg: { type: 'kick', condition: 'not-authorized', text: 'account deleted' } },
    { do: 'deleted', to: 'admin:1' },
    { do: 'exit' },
  ]);
});

test('a v1 snapshot (monitors named by their refs) migrates to v2: a down from a monitor v1 set still ends its session', () => {
  const v1 = { status: 'active', output: undefined, error: undefined, context: { ...withSessions(online('phone')), watch: { phone: 4294967301 } } as Partial<UserCtx> };
  delete v1.context.tags;
  const ctx = userKind.migrate!(v1 as never, 1).context as UserCtx;
  assert.is(ctx.tags, 0);
  const o = run(ctx, { type: 'runtime.down', address: 'session:alice@example.com/phone', ref: 4294967301, reason: 'normal' });
  assert.equal(o.context.sessions, {});
});

test.run();
