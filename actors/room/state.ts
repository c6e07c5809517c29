// A room's state (XEP-0045): its configuration, affiliations (who someone is to the room, kept) and
// occupants (who is in it now, with a role), subject and recent history. Plain data: it is the room
// actor's snapshot, so a crash or a restart brings every occupant back as they were.
import type { MucSettings } from '../../src/modules/muc.ts';

export type Affiliation = 'owner' | 'admin' | 'member' | 'outcast' | 'none';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

export interface RoomConfig {
  name: string;
  description: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** '' = no password. */
  password: string;
  maxUsers: number;
  /** Who sees occupants' real JIDs: 'moderators' (semi-anonymous) or 'anyone' (non-anonymous). */
  whois: 'moderators' | 'anyone';
  historyLength: number;
  allowPm: 'anyone' | 'participants' | 'moderators' | 'none';
  allowInvites: boolean;
  changeSubject: boolean;
}

export interface Occupant {
  nick: string;
  /** The occupant's real bare JID; every one of `jids` has it (one person, several clients). */
  bare: string;
  /** Full JIDs joined under this nick, in join order. */
  jids: string[];
  role: Role;
  /** The children of its last available presence (show, status, caps), serialized. */
  presence: string;
}

/** Recent messages for joiners, kept in the snapshot only when the room has no archive. */
export interface HistoryEntry { xml: string; at: number }

export interface RoomCtx {
  /** The room's bare JID, or the service domain for the service's own actor. */
  jid: string;
  /** Created (by a first join) and not destroyed. */
  exists: boolean;
  /** Created and awaiting its owner's configuration: nobody else may enter (XEP-0045 §10.1.1). */
  locked: boolean;
  config: RoomConfig;
  /** By bare JID; 'none' is not kept. */
  affiliations: Record<string, Affiliation>;
  /** By nick. */
  occupants: Record<string, Occupant>;
  subject: { text: string; nick: string; at: number } | null;
  history: HistoryEntry[];
  /** Registered nicknames (§7.10), by bare JID: nobody else enters under them. */
  nicks?: Record<string, string>;
}

export function defaultConfig(s: MucSettings, local: string): RoomConfig {
  return {
    name: local, description: '', persistent: s.persistentDefault, public: s.publicDefault, membersOnly: false, moderated: false,
    password: '', maxUsers: s.maxOccupants, whois: 'moderators', historyLength: s.historyLength, allowPm: 'anyone', allowInvites: false, changeSubject: false,
  };
}

export function initialRoom(address: string): RoomCtx {
  return {
    jid: address.slice('room:'.length), exists: false, locked: false, config: null as unknown as RoomConfig,
    affiliations: {}, occupants: {}, subject: null, history: [],
  };
}

/** The affiliation of a bare JID: the service's admins own every room. */
export function affiliationOf(ctx: RoomCtx, s: MucSettings, bare: string): Affiliation {
  if (s.admins.includes(bare)) return 'owner';
  return ctx.affiliations[bare] ?? 'none';
}

/** The role someone gets on entering (§5.1.2): moderators are owners and admins; a moderated room
 *  gives voice to members only. */
export function roleOnEntry(ctx: RoomCtx, a: Affiliation): Role {
  if (a === 'owner' || a === 'admin') return 'moderator';
  if (ctx.config.moderated && a === 'none') return 'visitor';
  return 'participant';
}

/** The nick of an occupant by one of its full JIDs. */
export function nickOf(ctx: RoomCtx, full: string): string | undefined {
  for (const o of Object.values(ctx.occupants)) if (o.jids.includes(full)) return o.nick;
  return undefined;
}

const RANK: Record<Affiliation, number> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };
export const outranks = (a: Affiliation, b: Affiliation): boolean => RANK[a] > RANK[b];
export const atLeast = (a: Affiliation, b: Affiliation): boolean => RANK[a] >= RANK[b];
