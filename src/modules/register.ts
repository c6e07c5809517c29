// In-band registration (XEP-0077): a new account registered on a stream before authentication
// (§3.1: open registration when the host allows it, else only what another module allows, as an
// invitation kept on the stream), and what a logged-in account may do: change its password (§3.3)
// and delete itself (§3.2). New verifiers are derived (the password is never kept); on a password
// change the sessions that are open stay, the next login needs the new password.
import { x } from '../xml/builder.ts';
import { NS } from '../xml/namespaces.ts';
import { defineModule, type IqRequest, type PreauthIq, type RegistrationEvent } from '../xmpp/module.ts';
import { keyOf, keys } from '../storage/db.ts';
import { AccountError, withPassword, type AccountRecord } from '../storage/accounts.ts';
import { revokeTokens } from '../storage/fast-tokens.ts';
import { JidError, parseJid, prepareLocalpart } from '../xmpp/jid.ts';
import { addressKey } from '../sasl/throttle.ts';
import type { ModuleApi, OptionValues } from '../xmpp/module.ts';

const options = {
  iterations: { type: 'number', default: 4096, min: 4096, max: 10_000_000, doc: 'PBKDF2 iterations of the verifiers a password change or a registration derives.' },
  allow_removal: { type: 'boolean', default: true, doc: 'Whether an account may delete itself (XEP-0077 §3.2), with everything the server keeps for it.' },
  allow_registration: { type: 'boolean', default: false, doc: 'Whether anyone may register an account in-band (XEP-0077 §3.1); off, only an invitation lets one register (the invites module).' },
  min_seconds_between_registrations: { type: 'number', default: 300, min: 0, max: 86_400 * 30, doc: 'How long an address waits between two open registrations (invitations are not limited).' },
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

type Options = OptionValues<typeof options>;

/** Asks the loaded modules whether this stream may register (`username` null: for the form). */
async function registering(m: ModuleApi<Options>, iq: PreauthIq, username: string | null): Promise<RegistrationEvent> {
  const ev: RegistrationEvent = {
    host: iq.host, now: iq.now, route: iq.route, storage: iq.storage, log: iq.log, operator: iq.operator,
    username, kept: iq.kept, allowed: m.optionsFor(iq.host).allow_registration,
  };
  await m.fire('account/registering', ev);
  return ev;
}

const instructions = 'Choose a username and password for use with this service.';
/** Per address as the login throttle counts them: an IPv6 /64 is one address. */
const lastRegistration = (address: string) => keyOf('register', 'address', addressKey(address));

/** XEP-0077 §3.1: the fields to fill (the username given, when an invitation names it). */
async function form(m: ModuleApi<Options>, iq: PreauthIq): Promise<void> {
  const ev = await registering(m, iq, null);
  if (!ev.allowed) { iq.error('not-allowed', 'cancel', ev.refusal?.text ?? 'registration here is by invitation only'); return; }
  iq.reply(x('query', { xmlns: NS.REGISTER }, x('instructions', null, instructions), x('username', null, ev.fixedUsername ?? null), x('password')));
}

/** XEP-0077 §3.1: the account is made, as `chorus adduser` makes one; the stream may then authenticate. */
async function register(m: ModuleApi<Options>, iq: PreauthIq): Promise<void> {
  if (iq.payload.child('remove', NS.REGISTER)) { iq.error('not-authorized', 'auth', 'log in to remove an account'); return; }
  const given = iq.payload.getChildText('username', NS.REGISTER);
  const password = iq.payload.getChildText('password', NS.REGISTER);
  if (!given || !password) { iq.error('not-acceptable', 'modify', 'a registration needs a <username/> and a <password/>'); return; }
  let username: string;
  try { username = prepareLocalpart(given.trim()); parseJid(`${username}@${iq.host}`); } catch (e) {
    if (!(e instanceof JidError)) throw e;
    iq.error('not-acceptable', 'modify', `'${given}' is not a valid username: ${e.message}`); return;
  }
  const ev = await registering(m, iq, username);
  if (ev.refusal) { iq.error(ev.refusal.condition, undefined, ev.refusal.text); return; }
  if (!ev.allowed) { iq.error('not-allowed', 'cancel', 'registration here is by invitation only'); return; }
  if (ev.fixedUsername !== undefined && ev.fixedUsername !== username) { iq.error('not-allowed', 'modify', `this invitation is for the username ${ev.fixedUsername}`); return; }
  const jid = `${username}@${iq.host}`;
  if (await iq.storage.get(keys.acct(jid))) { iq.error('conflict', 'cancel', `${jid} is taken`); return; }
  // Open registration (no module vouched for this stream) is limited per address.
  const open = ev.allowedBy === undefined;
  const o = m.optionsFor(iq.host);
  if (open && o.min_seconds_between_registrations > 0) {
    const last = await iq.storage.get<number>(lastRegistration(iq.remote));
    if (last !== undefined && iq.now() - last < o.min_seconds_between_registrations * 1000) {
      iq.error('resource-constraint', 'wait', 'too many registrations from this address; try again later'); return;
    }
  }
  try {
    await iq.operator('adduser', { jid, password, iterations: o.iterations });
  } catch (e) {
    // Raced by another registration of the name, or a password the account rules refuse.
    const text = (e as Error).message;
    iq.error(/already exists/.test(text) ? 'conflict' : 'not-acceptable', 'modify', text); return;
  }
  if (open) await iq.storage.put(lastRegistration(iq.remote), iq.now());
  await m.fire('account/registered', { host: iq.host, now: iq.now, route: iq.route, storage: iq.storage, log: iq.log, operator: iq.operator, jid: parseJid(jid), kept: iq.kept });
  iq.log('info', `registered the account ${jid} (XEP-0077${open ? '' : `, allowed by ${ev.allowedBy}`})`);
  iq.reply();
}

export default defineModule({
  name: 'register',
  description: 'In-band registration (XEP-0077): new accounts (open, or by invitation), changing one\'s password, deleting one\'s account.',
  xeps: [{ xep: 77, version: '2.4', status: 'complete', note: 'registration before authentication with the basic fields (no data forms or CAPTCHA); off by default, then by invitation only' }],
  features: { host: [NS.REGISTER] },
  options,
  storage: ['register'],
  setup(m) {
    // The stream feature says registration is possible here: open registration, or (the invites
    // module adds it) an invitation.
    m.hook('stream/pre-auth-features', (ev) => {
      if (m.optionsFor(ev.host).allow_registration) ev.features.push(x('register', { xmlns: NS.REGISTER_FEATURE }));
    });
    m.preauth('get', NS.REGISTER, (iq) => form(m, iq));
    m.preauth('set', NS.REGISTER, (iq) => register(m, iq));

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
