// Multi-User Chat (XEP-0045): a group-chat service on each host, `conference.<host>` unless the
// options say otherwise. Each room is a room actor (actors/room): `room:<room JID>`, started by its
// first stanza, restored from its snapshot after a crash or a restart; the service domain itself is
// answered by `room:<domain>` (disco, the public rooms). The module only declares the service and
// what its rooms read; the rooms do the protocol.
import { tryParseJid } from '../xmpp/jid.ts';
import { defineModule } from '../xmpp/module.ts';

const options = {
  host: { type: 'string', default: '', doc: 'The group-chat domain (default conference.<host>).' },
  name: { type: 'string', default: 'Chatrooms', doc: 'The service name shown in disco.' },
  enabled: { type: 'boolean', default: true, doc: 'Serve group chat on this host.' },
  restrict_creation: { type: 'string', default: 'local', enum: ['anyone', 'local', 'admins'] as string[], doc: 'Who may create rooms: anyone, accounts of this host, or the admins only.' },
  admins: { type: 'strings', default: [] as string[], doc: 'Bare JIDs that are owners of every room (and may create rooms when restrict_creation is admins), beside the server\'s admins.' },
  history_length: { type: 'number', default: 20, min: 0, max: 200, doc: 'Messages a new room keeps for joiners (its owners may lower it).' },
  max_history_length: { type: 'number', default: 50, min: 0, max: 1000, doc: 'The most a room may keep for joiners.' },
  max_occupants: { type: 'number', default: 200, min: 1, max: 100_000, doc: 'The most occupants a room may allow (its owners set a lower limit).' },
  persistent_default: { type: 'boolean', default: false, doc: 'Whether new rooms are persistent until configured otherwise.' },
  public_default: { type: 'boolean', default: true, doc: 'Whether new rooms are listed in the service\'s disco#items.' },
  archive: { type: 'boolean', default: true, doc: 'Rooms keep an archive of their messages (XEP-0313) for whoever may enter them.' },
} as const;

/** What a room actor reads from its service declaration (src/xmpp/routing.ts ServiceDomain.settings). */
export interface MucSettings {
  host: string;
  restrictCreation: 'anyone' | 'local' | 'admins';
  admins: string[];
  historyLength: number;
  maxHistoryLength: number;
  maxOccupants: number;
  persistentDefault: boolean;
  publicDefault: boolean;
  archive: boolean;
}

export default defineModule({
  name: 'muc',
  description: 'Group chat (XEP-0045): a service at conference.<host> whose rooms are room actors.',
  xeps: [
    { xep: 45, version: '1.35', status: 'partial', note: 'join, leave, nick change, groupchat, subject, private messages, IQs to occupants, history, owner configuration, affiliations and roles, kick and ban, voice requests, nick registration, destroy, mediated invitations' },
    { xep: 249, version: '1.2', status: 'complete', note: 'direct invitations pass through as ordinary messages' },
    { xep: 410, version: '1.1', status: 'complete', note: 'self-ping answered by the room' },
    { xep: 421, version: '0.1', status: 'complete' },
    { xep: 313, version: '1.1.1', status: 'complete', note: 'room archives, with stanza ids by the room (XEP-0359)' },
    { xep: 425, version: '0.3.0', status: 'complete', note: 'moderators retract a message for everyone; a tombstone in the archive' },
  ],
  options,
  // The service's list of rooms, and each room's archive (a room's state is its actor's snapshot).
  storage: ['muc', 'mucmam'],
  services: (host, o, admins) => (o.enabled ? [{
    domain: o.host || `conference.${host}`, kind: 'room', name: o.name,
    settings: {
      host, restrictCreation: o.restrict_creation as MucSettings['restrictCreation'], admins: [...new Set([...admins, ...o.admins])],
      historyLength: Math.min(o.history_length, o.max_history_length), maxHistoryLength: o.max_history_length,
      maxOccupants: o.max_occupants, persistentDefault: o.persistent_default, publicDefault: o.public_default, archive: o.archive,
    } satisfies MucSettings,
  }] : []),
  operatorCommands: [
    {
      name: 'rooms', usage: 'chorus rooms [HOST]', summary: 'the group chats of a host (the first one by default)', args: [0, 1],
      ask: ([host], node) => {
        const h = host ?? node.hosts[0]!;
        if (!node.hosts.includes(h)) return `${h} is not a host of this server (hosts: ${node.hosts.join(', ')})`;
        const sd = node.services(h).find((d) => d.module === 'muc');
        if (!sd) return `${h} has no group-chat service (modules.options.muc.enabled is false there)`;
        return { address: `${sd.kind}:${sd.domain}`, message: { type: 'operator', command: 'rooms' } };
      },
    },
    {
      name: 'room', usage: 'chorus room info|destroy ROOM [REASON]', summary: 'a group chat\'s configuration and occupants, or destroy it (its occupants are told why)', args: [2, 3],
      ask: ([verb, room, reason], node) => {
        if (verb !== 'info' && verb !== 'destroy') return `'${verb}' is not info or destroy`;
        if (reason !== undefined && verb !== 'destroy') return 'only destroy takes a reason';
        const jid = tryParseJid(room!);
        const services = node.hosts.flatMap((h) => node.services(h)).filter((d) => d.module === 'muc');
        const sd = jid && jid.local !== '' && jid.isBare() ? services.find((d) => d.domain === jid.domain) : undefined;
        if (!sd) return `'${room}' is not a room of this server (a room is name@${services.map((d) => d.domain).join(' or name@') || 'a group-chat service'})`;
        return { address: `${sd.kind}:${jid!.toString()}`, message: { type: 'operator', command: verb, ...(reason ? { reason } : {}) } };
      },
    },
  ],
  setup() {},
});
