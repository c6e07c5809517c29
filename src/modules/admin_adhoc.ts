// The server administration commands of XEP-0133, for the config's admins, over ad-hoc commands
// (the adhoc module runs them): add, delete and re-password accounts, count and list who is
// online, a user's statistics, and an announcement to everyone online. Account changes run the
// node's own operator commands (StanzaContext.operator: the admin socket's adduser, deluser,
// passwd), so an admin's client and `chorus adduser` do exactly the same thing.
import { x } from '../xml/builder.ts';
import { tryParseJid, type Jid } from '../xmpp/jid.ts';
import { defineModule, type CommandContext, type CommandDefinition, type CommandResult } from '../xmpp/module.ts';
import { rosterKeys } from './roster-store.ts';

const ADMIN = 'http://jabber.org/protocol/admin';
const LIST_SIZES = ['25', '50', '75', '100', '150', '200', 'all'];

const one = (values: Map<string, string[]>, name: string): string => values.get(name)?.[0]?.trim() ?? '';
const info = (text: string): CommandResult => ({ note: { type: 'info', text } });
const refused = (text: string): CommandResult => ({ note: { type: 'error', text } });

export default defineModule({
  name: 'admin_adhoc',
  description: 'Server administration (XEP-0133) for the server\'s admins, as ad-hoc commands.',
  xeps: [{ xep: 133, version: '1.3.1', status: 'partial', note: 'add-user, delete-user, change-user-password, user-stats, get-registered-users-num, get-online-users-num, get-online-users-list, announce' }],
  depends: ['adhoc'],
  setup(m) {
    /** An account of the host the command was sent to, or the reason it is not one. */
    const account = (c: CommandContext, s: string): Jid | string => {
      const jid = tryParseJid(s);
      if (!jid || jid.local === '' || !jid.isBare()) return `'${s}' is not an account's address (user@${c.host})`;
      if (jid.domain !== c.host) return `${jid} is not an account of ${c.host}`;
      return jid;
    };
    /** The bound sessions of the host's accounts, as full JIDs (an actor `session:<full JID>` each). */
    const online = async (c: CommandContext): Promise<Jid[]> => {
      const actors = await c.operator('actors', { kind: 'session' }) as Array<{ address: string }>;
      return actors.map((a) => tryParseJid(a.address.slice('session:'.length)))
        .filter((j): j is Jid => j !== undefined && j.local !== '' && j.resource !== '' && j.domain === c.host);
    };
    const command = (name: string, label: string, rest: Omit<CommandDefinition, 'node' | 'name' | 'access'>) =>
      m.command({ node: `${ADMIN}#${name}`, name: label, access: 'admin', ...rest });

    command('add-user', 'Add a user', {
      form: () => ({ title: 'Adding a user', instructions: 'The address and password of the new account.', fields: [
        { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for the account to be added' },
        { var: 'password', type: 'text-private', label: 'The password for this account' },
        { var: 'password-verify', type: 'text-private', label: 'Retype password' },
      ] }),
      run: async (c, v) => {
        const jid = account(c, one(v, 'accountjid'));
        if (typeof jid === 'string') return refused(jid);
        const password = v.get('password')?.[0] ?? '';
        if (password !== (v.get('password-verify')?.[0] ?? password)) return refused('the two passwords differ');
        await c.operator('adduser', { jid: jid.toString(), password });
        c.log('info', `added the account ${jid} (XEP-0133)`);
        return info(`${jid} is added`);
      },
    });

    command('delete-user', 'Delete users', {
      form: () => ({ title: 'Deleting users', instructions: 'Their data goes with them: roster, archive, offline messages, PEP.', fields: [
        { var: 'accountjids', type: 'jid-multi', label: 'The Jabber ID(s) to delete' },
      ] }),
      run: async (c, v) => {
        const done: string[] = [];
        const problems: string[] = [];
        for (const s of v.get('accountjids') ?? []) {
          const jid = account(c, s.trim());
          if (typeof jid === 'string') { problems.push(jid); continue; }
          // The account's own actor runs this command: it cannot also wait here for its own deletion.
          if (jid.bareEquals(c.from)) { problems.push(`${jid} is your own account: delete it from another admin account or with chorus deluser`); continue; }
          try { await c.operator('deluser', { jid: jid.toString() }); done.push(jid.toString()); } catch (e) { problems.push((e as Error).message); }
        }
        if (done.length) c.log('info', `deleted ${done.join(', ')} (XEP-0133)`);
        const text = [done.length ? `deleted: ${done.join(', ')}` : 'nothing deleted', ...problems].join('\n');
        return problems.length ? refused(text) : info(text);
      },
    });

    command('change-user-password', 'Change a user\'s password', {
      form: () => ({ title: 'Changing a user\'s password', fields: [
        { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID' },
        { var: 'password', type: 'text-private', label: 'The new password' },
      ] }),
      run: async (c, v) => {
        const jid = account(c, one(v, 'accountjid'));
        if (typeof jid === 'string') return refused(jid);
        await c.operator('passwd', { jid: jid.toString(), password: v.get('password')?.[0] ?? '' });
        c.log('info', `changed the password of ${jid} (XEP-0133)`);
        return info(`the password of ${jid} is changed; its open sessions stay`);
      },
    });

    command('user-stats', 'Get user statistics', {
      form: () => ({ title: 'A user\'s statistics', fields: [{ var: 'accountjid', type: 'jid-single', label: 'The Jabber ID' }] }),
      run: async (c, v) => {
        const jid = account(c, one(v, 'accountjid'));
        if (typeof jid === 'string') return refused(jid);
        const [sessions, roster] = await Promise.all([online(c), c.storage.range(rosterKeys.of(jid.toString()))]);
        return { form: { title: `Statistics of ${jid}`, fields: [
          { var: 'accountjid', type: 'jid-single', value: jid.toString() },
          { var: 'rostersize', type: 'text-single', label: 'Roster size', value: roster.length },
          { var: 'onlineresources', type: 'text-multi', label: 'Online resources', value: sessions.filter((s) => s.bareEquals(jid)).map((s) => s.resource) },
        ] } };
      },
    });

    command('get-registered-users-num', 'Get number of registered users', {
      run: async (c) => ({ form: { fields: [
        { var: 'registeredusersnum', type: 'text-single', label: 'The number of registered users', value: ((await c.operator('users', { host: c.host })) as string[]).length },
      ] } }),
    });

    command('get-online-users-num', 'Get number of online users', {
      run: async (c) => ({ form: { fields: [
        { var: 'onlineusersnum', type: 'text-single', label: 'The number of online users', value: new Set((await online(c)).map((j) => j.toBareString())).size },
      ] } }),
    });

    command('get-online-users-list', 'Get list of online users', {
      form: () => ({ fields: [
        { var: 'max_items', type: 'list-single', label: 'Maximum number of items to show', value: '25', options: LIST_SIZES.map((value) => ({ value })) },
      ] }),
      run: async (c, v) => {
        const max = one(v, 'max_items');
        const users = [...new Set((await online(c)).map((j) => j.toBareString()))].sort();
        return { form: { fields: [
          { var: 'onlineuserjids', type: 'jid-multi', label: 'The list of all online users', value: max === 'all' || max === '' ? users : users.slice(0, Number(max) || 25) },
        ] } };
      },
    });

    command('announce', 'Send announcement to online users', {
      form: () => ({ title: 'Making an announcement', instructions: 'A headline message to every session online on this host.', fields: [
        { var: 'subject', type: 'text-single', label: 'Subject' },
        { var: 'announcement', type: 'text-multi', label: 'Announcement' },
      ] }),
      run: async (c, v) => {
        const body = (v.get('announcement') ?? []).join('\n');
        if (body.trim() === '') return refused('an announcement needs a text');
        const subject = one(v, 'subject');
        const to = await online(c);
        for (const jid of to) {
          c.route(x('message', { from: c.host, to: jid.toString(), type: 'headline' }, subject ? x('subject', null, subject) : null, x('body', null, body)));
        }
        c.log('info', `announcement sent to ${to.length} sessions (XEP-0133)`);
        return info(`sent to ${to.length} session${to.length === 1 ? '' : 's'}`);
      },
    });
  },
});
