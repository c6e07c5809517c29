// Invitations (XEP-0401) and registering with one (XEP-0445): a family server keeps registration
// closed and lets people in by invitation. An admin makes an account invitation (`chorus invite`, or
// the urn:xmpp:invite#create-account command), an account a contact invitation
// (urn:xmpp:invite#invite); the invitee's client sends the token before authenticating, and the
// register module lets that stream register once. The token is used up by the registration. Each
// invitation also has a web page (/invite/<token> on the HTTP listeners, XEP-0401's landing URL) for
// people who have no XMPP app yet: which to install, and the button that opens the invitation in it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serialize, x } from '../xml/builder.ts';
import { NS } from '../xml/namespaces.ts';
import { defineModule, webBase, type CommandContext, type CommandResult, type HttpContext, type PresenceEvent, type WebPorts } from '../xmpp/module.ts';
import { prepareLocalpart } from '../xmpp/jid.ts';
import { AccountError, setRole } from '../storage/accounts.ts';
import { xmppDateTime } from '../xmpp/delay.ts';
import { createInvite, dropInvites, findInvite, inviteUri, keepFor, lookupInvite, reservation, useInvite, type Invite } from '../storage/invites.ts';
import type { PresenceApi } from './presence.ts';

const options = {
  expiry_days: { type: 'number', default: 7, min: 0, max: 3650, doc: 'Days an invitation stays valid (0: until used).' },
  allow_user_invites: { type: 'boolean', default: true, doc: 'Whether every account may invite a contact, who may then register here (XEP-0401 §4.1); off, only admins invite.' },
} as const;

/** A username as typed, in its prepared form when it has one (createInvite says what is wrong). */
const prepared = (s: string): string => { try { return prepareLocalpart(s); } catch { return s; } };

/** Where the token accepted on a stream is kept (PreauthIq.kept). */
const KEPT = 'invite';

const PAGE = '/invite/';

/** The invitation's web page, where this node has an HTTP listener. */
export function landingUrl(web: WebPorts | null, invite: Pick<Invite, 'host' | 'token'>): string | null {
  const base = webBase(web, invite.host);
  return base && `${base}${PAGE}${invite.token}`;
}

/** XEP-0401's result form: the URI, its web page, and when it expires. */
function invitation(invite: Invite, title: string, web: WebPorts | null): CommandResult {
  const page = landingUrl(web, invite);
  return {
    form: {
      title, formType: `${NS.INVITE}#invitation`,
      fields: [
        { var: 'uri', type: 'text-single', label: 'Invitation URI', value: inviteUri(invite) },
        ...(page ? [{ var: 'landing-url', type: 'text-single' as const, label: 'Invitation web page', value: page }] : []),
        ...(invite.expires === null ? [] : [{ var: 'expire', type: 'text-single' as const, label: 'Valid until', value: xmppDateTime(invite.expires) }]),
      ],
    },
  };
}

export default defineModule({
  name: 'invites',
  description: 'Invitations (XEP-0401): accounts made by invitation on a server whose registration is closed (XEP-0445).',
  xeps: [
    { xep: 401, version: '0.6.0', status: 'partial', note: 'invite and create-account commands, xmpp: URIs and a web page each (landing-url); contact invitations subscribe both ways (XEP-0379)' },
    { xep: 445, version: '0.2.0', status: 'complete' },
    { xep: 379, status: 'partial', note: 'server side: a subscription with the token of an invitation is approved, and returned' },
  ],
  depends: ['register', 'adhoc', 'presence'],
  options,
  http: [{ prefix: PAGE, handle: landingPage }],
  setup(m) {
    const presence = m.depends<PresenceApi>('presence');
    const ttl = (host: string): number | null => { const d: number = m.optionsFor(host).expiry_days; return d === 0 ? null : d * 86_400_000; };

    // XEP-0445: registration with a token is possible here (and, the register module's feature, in-band registration).
    m.hook('stream/pre-auth-features', (ev) => {
      ev.features.push(x('register', { xmlns: NS.IBR_TOKEN }));
      if (!ev.features.some((f) => f.getXmlns() === NS.REGISTER_FEATURE)) ev.features.push(x('register', { xmlns: NS.REGISTER_FEATURE }));
    }, -1);

    // XEP-0445 §4: the token is checked (expiry too) now, and kept on the stream until it registers.
    m.preauth('set', NS.PARS, async (iq) => {
      const token = iq.payload.localName === 'preauth' ? iq.payload.attr('token') ?? '' : '';
      const invite = await findInvite(iq.storage, token, iq.host, iq.now());
      if (!invite || invite.invitee) { iq.error('item-not-found', 'cancel', 'The provided token is invalid or expired'); return; }
      iq.keep(KEPT, invite.token);
      iq.reply();
    });

    m.hook('account/registering', async (ev) => {
      const token = ev.kept[KEPT];
      // Accepted on this stream: good even if it expired since (XEP-0445 §4).
      const invite = token ? await findInvite(ev.storage, token, ev.host, ev.now(), true) : undefined;
      if (invite && !invite.invitee) {
        ev.allowed = true;
        ev.allowedBy = 'an invitation';
        if (invite.username) ev.fixedUsername = invite.username;
      }
      if (ev.username !== null && ev.username !== invite?.username) {
        const held = await reservation(ev.storage, ev.host, ev.username, ev.now());
        if (held) ev.refusal = { condition: 'conflict', text: `${ev.username} is reserved for someone invited` };
      }
    });

    // An account invitation is used up. A contact invitation stays for the one subscription the new
    // account's client sends with its token (XEP-0379 §3.4), which it is now kept for.
    m.hook('account/registered', async (ev) => {
      const token = ev.kept[KEPT];
      const invite = token ? await findInvite(ev.storage, token, ev.host, ev.now(), true) : undefined;
      if (!invite) return;
      if (invite.role) {
        await setRole(ev.storage, ev.jid.toBareString(), invite.role);
        ev.log('info', `${ev.jid.toBareString()} is an ${invite.role}, by its invitation`);
      }
      if (invite.inviter) await keepFor(ev.storage, invite, ev.jid.toBareString());
      else await useInvite(ev.storage, invite.token);
    });

    // XEP-0379 §3.4: a subscription request carrying the token of one of the inviter's invitations is
    // approved on the inviter's behalf, and the inviter subscribes back: they are contacts both ways.
    // Synchronous for every other presence (no parse, no suspension of the account's actor).
    m.hook('presence/bare', (ev) => {
      if ((ev.type ?? ev.stanza.attr('type')) !== 'subscribe') return;
      const token = ev.stanza.child('preauth', NS.PARS)?.attr('token');
      return token ? byInvitation(ev, token) : undefined;
    }, 1);

    async function byInvitation(ev: PresenceEvent, token: string): Promise<void> {
      const owner = ev.user.jid.toBareString();
      const contact = ev.from.toBareString();
      const invite = await findInvite(ev.storage, token, ev.host, ev.now());
      if (!invite || invite.inviter !== owner || (invite.invitee !== undefined && invite.invitee !== contact)) return;
      await useInvite(ev.storage, invite.token);
      await presence.approve(ev, contact);
      await presence.ask(ev, contact);
      ev.log('info', `${contact} came by an invitation: subscribed both ways (XEP-0379)`);
    }

    // The invitations an account made go with it (and expired ones, while we are at it).
    m.hook('user/deleted', async (ev) => { await dropInvites(ev.storage, { inviter: ev.jid.toBareString() }); });

    m.command({
      node: `${NS.INVITE}#invite`, name: 'Invite someone', access: 'local',
      run: async (c: CommandContext) => {
        if (!m.optionsFor(c.host).allow_user_invites && !(await m.isAdmin(c.from.toBareString(), c.storage))) return { note: { type: 'error', text: 'only the server\'s admins invite people here' } };
        const invite = await createInvite(c.storage, { host: c.host, inviter: c.from.toBareString(), ttlMs: ttl(c.host) }, c.now());
        c.log('info', `${c.from.toBareString()} made an invitation (XEP-0401)`);
        return invitation(invite, 'Your invitation', m.web);
      },
    });

    m.command({
      node: `${NS.INVITE}#create-account`, name: 'Create an account invitation', access: 'admin',
      form: () => ({
        title: 'Creating an account invitation', instructions: 'Leave the username empty to let the invited person choose it.',
        fields: [{ var: 'username', type: 'text-single', label: 'Username' }],
      }),
      run: async (c, values) => {
        const given = values.get('username')?.[0]?.trim() ?? '';
        let invite: Invite;
        try {
          invite = await createInvite(c.storage, { host: c.host, username: given ? prepared(given) : undefined, ttlMs: ttl(c.host) }, c.now());
        } catch (e) {
          if (!(e instanceof AccountError)) throw e;
          return { note: { type: 'error', text: e.message } };
        }
        const username = invite.username;
        c.log('info', `${c.from.toBareString()} made an account invitation${username ? ` for ${username}` : ''} (XEP-0401)`);
        return invitation(invite, 'The account invitation', m.web);
      },
    });
  },
});

/** Apps to suggest on the page: the ones that take an invitation link as it is (XEP-0401). */
const APPS: Array<[name: string, where: string, url: string]> = [
  ['Conversations', 'Android', 'https://conversations.im/'],
  ['Monal', 'iPhone, iPad, Mac', 'https://monal-im.org/'],
  ['Gajim', 'Windows, Linux', 'https://gajim.org/'],
  ['Dino', 'Linux', 'https://dino.im/'],
];

const STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:2em auto;padding:0 1em;color:#222}' +
  'a.open{display:inline-block;padding:.6em 1.2em;background:#2a6ebb;color:#fff;border-radius:.4em;text-decoration:none}' +
  'code{word-break:break-all;background:#f3f3f3;padding:.1em .3em}li{margin:.3em 0}';

function page(res: ServerResponse, status: number, title: string, ...body: Parameters<typeof x>[2][]): void {
  const html = `<!DOCTYPE html>${serialize(x('html', { lang: 'en' },
    x('head', null, x('meta', { charset: 'utf-8' }), x('meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' }),
      x('meta', { name: 'robots', content: 'noindex' }), x('title', null, title), x('style', null, STYLE)),
    x('body', null, x('h1', null, title), ...body)))}`;
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" });
  res.end(html);
}

/** /invite/<token>: what the invited person sees before they have an app. */
async function landingPage(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') { ctx.text(res, 405, 'Method not allowed', { Allow: 'GET, HEAD' }); return; }
  const token = (req.url ?? '').split('?', 1)[0]!.slice(PAGE.length);
  const invite = await lookupInvite(ctx.storage, token, ctx.now());
  if (!invite || invite.invitee) {
    page(res, 404, 'This invitation is not valid', x('p', null, 'It was used, it expired, or the link is not complete. Ask the person who sent it for a new one.'));
    return;
  }
  const who = invite.inviter ? `${invite.inviter} invites you to chat` : `You are invited to ${invite.host}`;
  page(res, 200, who,
    x('p', null, invite.username
      ? ['Your address will be ', x('strong', null, `${invite.username}@${invite.host}`), '.']
      : `You choose your own address on ${invite.host}.`),
    x('h2', null, '1. Install an app'),
    x('ul', null, APPS.map(([name, where, url]) => x('li', null, x('a', { href: url, rel: 'noopener' }, name), ` (${where})`))),
    x('h2', null, '2. Open the invitation in it'),
    x('p', null, x('a', { class: 'open', href: inviteUri(invite) }, 'Open the invitation')),
    x('p', null, 'If the button does nothing, copy this into the app: ', x('code', null, inviteUri(invite))),
    invite.expires === null ? null : x('p', null, `Valid until ${new Date(invite.expires).toUTCString()}.`));
}
