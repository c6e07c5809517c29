// In-band registration (XEP-0077), what a logged-in account may do with it: change its password
// (§3.3), and delete itself (§3.2). New verifiers are derived (the password is never kept) and
// replace the old ones; the sessions that are open stay, the next login needs the new password.
// Registering new accounts in-band is for later (invitations).
import { x } from '../xml/builder.ts';
import { NS } from '../xml/namespaces.ts';
import { defineModule, type IqRequest } from '../xmpp/module.ts';
import { keys } from '../storage/db.ts';
import { AccountError, withPassword, type AccountRecord } from '../storage/accounts.ts';
import { revokeTokens } from '../storage/fast-tokens.ts';

const options = {
  iterations: { type: 'number', default: 4096, min: 4096, max: 10_000_000, doc: 'PBKDF2 iterations of the verifiers a password change derives.' },
  allow_removal: { type: 'boolean', default: true, doc: 'Whether an account may delete itself (XEP-0077 §3.2), with everything the server keeps for it.' },
} as const;

/**
 * An account deletes itself (§3.2): answered first, then deleted as `chorus deluser` deletes one (the
 * node's operator command, which has the account's own actor remove its data and close its
 * sessions once this IQ is done: not awaited here, the actor is busy with it).
 */
function remove(iq: IqRequest, allowed: boolean): void {
  if (!allowed) { iq.error('not-allowed', 'cancel', 'accounts are removed by the server\'s operator here'); return; }
  const jid = iq.from.toBareString();
  iq.reply();
  iq.log('info', 'the account deletes itself (XEP-0077)');
  iq.operator('deluser', { jid }).catch((e: Error) => iq.log('error', `deleting ${jid} failed: ${e.message}`));
}

export default defineModule({
  name: 'register',
  description: 'In-band registration (XEP-0077) for logged-in accounts: changing one\'s password, deleting one\'s account.',
  xeps: [{ xep: 77, version: '2.4', status: 'partial', note: 'password change and removal by a logged-in account; no registration of new accounts' }],
  features: { host: [NS.REGISTER] },
  options,
  setup(m) {
    m.iq('get', 'host', NS.REGISTER, (iq) => {
      if (!iq.user) { iq.error('forbidden', 'auth', 'for accounts of this server'); return; }
      iq.reply(x('query', { xmlns: NS.REGISTER }, x('registered'), x('username', null, iq.from.local), x('password')));
    });
    m.iq('set', 'host', NS.REGISTER, async (iq) => {
      if (!iq.user) { iq.error('forbidden', 'auth', 'for accounts of this server'); return; }
      if (iq.payload.child('remove', NS.REGISTER)) return remove(iq, m.optionsFor(iq.host).allow_removal);
      const username = iq.payload.getChildText('username', NS.REGISTER);
      const password = iq.payload.getChildText('password', NS.REGISTER);
      if (username === undefined || password === undefined) { iq.error('bad-request', 'modify', 'a password change needs <username/> and <password/>'); return; }
      if (username !== iq.from.local) { iq.error('not-authorized', 'modify', 'an account changes its own password only'); return; }
      const key = keys.acct(iq.from.toBareString());
      const old = await iq.storage.get<AccountRecord>(key);
      if (!old) { iq.error('item-not-found', 'cancel', 'no such account'); return; }
      let next: AccountRecord;
      try { next = await withPassword(old, password, m.optionsFor(iq.host).iterations); } catch (e) {
        if (!(e instanceof AccountError)) throw e;
        iq.error('not-acceptable', 'modify', e.message); return;
      }
      await iq.storage.put(key, next);
      // FAST tokens (XEP-0484) were got with the old password: they go with it.
      await revokeTokens(iq.storage, iq.from.toBareString());
      iq.log('info', 'password changed (XEP-0077)');
      iq.reply();
    });
  },
});
