// Ad-hoc commands (XEP-0050) at the server's address: the commands the loaded modules offer
// (m.command: the admin set of XEP-0133, ...) listed in disco#items of the commands node, each
// described by disco#info of its own node, and run as the XEP's one-stage flow: execute → the
// form (status executing, a session id) → complete with the filled form → the result (completed),
// or cancel. A command without a form completes at once. Who may see and run a command is its
// `access`: the server's admins (the config's, and accounts with the admin role), or any account of the host.
//
// Open sessions live in the requester's user actor (module state, so they survive its restart),
// at most MAX_SESSIONS per account, each for SESSION_TTL.
import { x } from '../xml/builder.ts';
import { NS } from '../xml/namespaces.ts';
import type { XmlElement } from '../xml/element.ts';
import { dataForm, readForm } from '../xmpp/forms.ts';
import { andThen, defineModule, type CommandContext, type CommandDefinition, type CommandForm, type CommandResult, type IqRequest } from '../xmpp/module.ts';

const MAX_SESSIONS = 8;
const SESSION_TTL = 10 * 60_000;

/** sessionid → the command it runs and when it began. */
type Sessions = Record<string, { node: string; at: number }>;

const appError = (name: 'bad-action' | 'bad-sessionid' | 'bad-payload' | 'malformed-action'): XmlElement => x(name, { xmlns: NS.COMMANDS });

export default defineModule({
  name: 'adhoc',
  description: 'Ad-hoc commands (XEP-0050) at the server: lists and runs the commands the loaded modules offer.',
  xeps: [{ xep: 50, version: '1.3.0', status: 'complete', note: 'one-stage commands (a form, then the result); prev/next are refused with bad-action' }],
  features: { host: [NS.COMMANDS] },
  setup(m) {
    const allowed = async (c: CommandDefinition, iq: IqRequest): Promise<boolean> =>
      iq.user !== undefined && (c.access === 'local' || await m.isAdmin(iq.from.toBareString(), iq.storage));

    m.hook('disco/node', async (iq) => {
      if (iq.target !== 'host') return false;
      if (iq.node === NS.COMMANDS) {
        if (iq.query === 'info') {
          iq.reply(x('query', { xmlns: NS.DISCO_INFO, node: NS.COMMANDS }, x('identity', { category: 'automation', type: 'command-list' })));
        } else {
          const admin = iq.user !== undefined && await m.isAdmin(iq.from.toBareString(), iq.storage);
          const mine = m.commands().filter((c) => iq.user !== undefined && (c.access === 'local' || admin));
          iq.reply(x('query', { xmlns: NS.DISCO_ITEMS, node: NS.COMMANDS }, mine.map((c) => x('item', { jid: iq.to.toString(), node: c.node, name: c.name }))));
        }
        return true;
      }
      const c = m.commands().find((o) => o.node === iq.node);
      if (!c) return false;
      if (!(await allowed(c, iq))) { iq.error('forbidden', 'auth'); return true; }
      if (iq.query === 'info') {
        iq.reply(x('query', { xmlns: NS.DISCO_INFO, node: c.node },
          x('identity', { category: 'automation', type: 'command-node', name: c.name }),
          x('feature', { var: NS.COMMANDS }), x('feature', { var: NS.DATA_FORMS })));
      } else {
        iq.reply(x('query', { xmlns: NS.DISCO_ITEMS, node: c.node }));
      }
      return true;
    });

    m.iq('set', 'host', NS.COMMANDS, async (iq) => {
      const node = iq.payload.attr('node');
      if (!node) { iq.error('bad-request', 'modify', 'a command needs a node'); return; }
      const c = m.commands().find((o) => o.node === node);
      if (!c) { iq.error('item-not-found', 'cancel', `no command ${node}`); return; }
      if (!(await allowed(c, iq))) { iq.error('forbidden', 'auth', iq.user ? 'for the server\'s admins' : 'for accounts of this server'); return; }
      const user = iq.user!;
      const action = iq.payload.attr('action') ?? 'execute';
      if (!['execute', 'complete', 'cancel', 'next', 'prev'].includes(action)) { iq.error('bad-request', 'modify', `no action ${action}`, { app: appError('malformed-action') }); return; }
      if (action === 'next' || action === 'prev') { iq.error('bad-request', 'modify', 'these commands have one stage: complete or cancel', { app: appError('bad-action') }); return; }

      const now = iq.now();
      const open: Sessions = Object.fromEntries(Object.entries(user.state<Sessions>('adhoc', () => ({}))).filter(([, s]) => now - s.at < SESSION_TTL));
      const save = (next: Sessions) => user.setState('adhoc', next);
      const sid = iq.payload.attr('sessionid');
      const answer = (status: 'executing' | 'completed' | 'canceled', sessionid: string, ...children: Array<XmlElement | null>) =>
        iq.reply(x('command', { xmlns: NS.COMMANDS, node, sessionid, status }, ...children));
      const context: CommandContext = iq;
      const done = (sessionid: string, r: CommandResult) =>
        answer('completed', sessionid, r.note ? x('note', { type: r.note.type }, r.note.text) : null, r.form ? formOf('result', r.form) : null);
      // A command that fails (an operator command refused: the account exists) says why in its note.
      const failed = (sessionid: string, err: unknown) => {
        iq.log('warn', `command ${node} failed: ${(err as Error)?.message ?? String(err)}`);
        done(sessionid, { note: { type: 'error', text: (err as Error)?.message ?? String(err) } });
      };
      const complete = (sessionid: string, values: Map<string, string[]>): void | Promise<void> => {
        let r: CommandResult | Promise<CommandResult>;
        try { r = c.run(context, values); } catch (err) { failed(sessionid, err); return; }
        if (r instanceof Promise) return r.then((v) => done(sessionid, v), (err) => failed(sessionid, err));
        done(sessionid, r);
      };

      if (sid === undefined) {
        if (action === 'cancel') { iq.error('bad-request', 'modify', 'nothing to cancel', { app: appError('bad-sessionid') }); return; }
        const fresh = `${now.toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
        const submitted = readForm(iq.payload);
        // A requester that sends the filled form with its first request skips the form stage.
        if (!c.form || submitted?.type === 'submit') return complete(fresh, submitted?.values ?? new Map());
        return andThen(c.form(context), (form) => {
          const kept = Object.entries(open).sort((a, b) => b[1].at - a[1].at).slice(0, MAX_SESSIONS - 1);
          save({ ...Object.fromEntries(kept), [fresh]: { node, at: now } });
          answer('executing', fresh, x('actions', { execute: 'complete' }, x('complete')), formOf('form', form));
        });
      }
      const session = open[sid];
      if (!session || session.node !== node) { iq.error('bad-request', 'modify', 'no such session (ended, or older than ten minutes)', { app: appError('bad-sessionid') }); return; }
      const { [sid]: _, ...rest } = open;
      void _;
      save(rest);
      if (action === 'cancel') { answer('canceled', sid); return; }
      const submitted = readForm(iq.payload);
      if (!submitted || submitted.type !== 'submit') { iq.error('bad-request', 'modify', 'complete needs the filled form', { app: appError('bad-payload') }); return; }
      return complete(sid, submitted.values);
    });
  },
});

function formOf(type: 'form' | 'result', f: CommandForm): XmlElement {
  return dataForm({ type, title: f.title, instructions: f.instructions, formType: f.formType }, f.fields);
}
