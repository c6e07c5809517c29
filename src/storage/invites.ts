// Invitations (XEP-0401, with XEP-0445's pre-authenticated registration): `invite!<token>` → who may
// register, on which host, under which name, until when. Made by the operator (`chorus invite`) and by
// accounts (the invites module's ad-hoc commands); used up by the registration they allow.
import { randomBytes } from 'node:crypto';
import { keyOf, keys, keysUnder } from './db.ts';
import { AccountError, type Role } from './accounts.ts';
import { prepareLocalpart } from '../xmpp/jid.ts';
import type { Storage } from '../xmpp/module.ts';

export interface Invite {
  /** 32 hex digits: alphanumeric, as XEP-0401 asks of a token, and 128 bits of chance. */
  token: string;
  host: string;
  /** The account name it reserves (an Account Creation invitation naming the user); else the
   *  invitee chooses. */
  username?: string;
  /** Who invited: a contact invitation (XEP-0401 §User Invitation) names the inviter. */
  inviter?: string;
  /** The account a contact invitation registered: the token is still good for that account's
   *  subscription to the inviter (XEP-0379), and only for it. */
  invitee?: string;
  /** The role the account it makes gets (`chorus invite --admin`). */
  role?: Role;
  created: number;
  /** ms since the epoch; null: never expires. */
  expires: number | null;
}

const inviteKey = (token: string) => keyOf('invite', token);
const ALL = keysUnder('invite'); // every token: `invite!`

/** A new invitation; one naming a username is refused (AccountError) if the name is no valid
 *  localpart, is an account already or is reserved by another invitation. */
export async function createInvite(storage: Storage, o: { host: string; username?: string; inviter?: string; role?: Role; ttlMs: number | null }, now = Date.now()): Promise<Invite> {
  if (o.username !== undefined) {
    let username: string;
    try { username = prepareLocalpart(o.username); } catch (e) {
      throw new AccountError(`'${o.username}' is not a valid username: ${(e as Error).message}`);
    }
    if (username !== o.username) throw new AccountError(`'${o.username}' is not a username in its prepared form (${username})`);
    if (await storage.get(keys.acct(`${username}@${o.host}`)) !== undefined) throw new AccountError(`${username}@${o.host} exists already`);
    if (await reservation(storage, o.host, username, now)) throw new AccountError(`${username}@${o.host} is reserved by another invitation`);
  }
  const invite: Invite = {
    token: randomBytes(16).toString('hex'), host: o.host, created: now, expires: o.ttlMs === null ? null : now + o.ttlMs,
    ...(o.username ? { username: o.username } : {}), ...(o.inviter ? { inviter: o.inviter } : {}), ...(o.role ? { role: o.role } : {}),
  };
  await storage.put(inviteKey(invite.token), invite);
  return invite;
}

/** The invitation of this token on this host; an expired one only when `evenExpired` (XEP-0445: a
 *  token accepted on a stream stays good on it). */
export async function findInvite(storage: Pick<Storage, 'get'>, token: string, host: string, now = Date.now(), evenExpired = false): Promise<Invite | undefined> {
  const invite = await lookupInvite(storage, token, now, evenExpired);
  return invite?.host === host ? invite : undefined;
}

/** The invitation a token names, on whichever host (the landing page knows no host but the token's). */
export async function lookupInvite(storage: Pick<Storage, 'get'>, token: string, now = Date.now(), evenExpired = false): Promise<Invite | undefined> {
  if (!/^[0-9a-f]{32}$/.test(token)) return undefined;
  const invite = await storage.get<Invite>(inviteKey(token));
  if (!invite) return undefined;
  return evenExpired || invite.expires === null || invite.expires > now ? invite : undefined;
}

export async function listInvites(storage: Storage, now = Date.now()): Promise<Invite[]> {
  return (await storage.range<Invite>(ALL)).map(([, v]) => v).filter((i) => i.expires === null || i.expires > now);
}

/** XEP-0401: "the server MUST reserve the username at least until the corresponding token expires". */
export async function reservation(storage: Storage, host: string, username: string, now = Date.now()): Promise<Invite | undefined> {
  return (await listInvites(storage, now)).find((i) => i.host === host && i.username === username);
}

/** A contact invitation that registered `invitee`: kept, for that account's subscription only. */
export const keepFor = (storage: Storage, invite: Invite, invitee: string): Promise<void> => storage.put(inviteKey(invite.token), { ...invite, invitee });

export const useInvite = (storage: Storage, token: string): Promise<void> => storage.del(inviteKey(token));

/** Removes the invitations an account made (it is deleted) and the expired ones. */
export async function dropInvites(storage: Storage, o: { inviter?: string }, now = Date.now()): Promise<number> {
  const gone = (await storage.range<Invite>(ALL)).filter(([, i]) => (i.expires !== null && i.expires <= now) || (o.inviter !== undefined && i.inviter === o.inviter));
  if (gone.length) await storage.batch(gone.map(([key]) => ({ type: 'del' as const, key })));
  return gone.length;
}

/** The xmpp: URI of an invitation (XEP-0401 §4.1, §4.4; XEP-0445): a contact invitation that allows
 *  registering, or an account invitation with or without the account's name. */
export function inviteUri(i: Invite): string {
  if (i.inviter) return `xmpp:${uriJid(i.inviter)}?roster;preauth=${i.token};ibr=y`;
  return `xmpp:${i.username ? `${uriJid(`${i.username}@${i.host}`)}` : i.host}?register;preauth=${i.token}`;
}

/** RFC 5122: a localpart's characters outside the URI's own set are percent-encoded. */
const uriJid = (bare: string): string => {
  const at = bare.indexOf('@');
  return `${encodeURIComponent(bare.slice(0, at))}${bare.slice(at)}`;
};
