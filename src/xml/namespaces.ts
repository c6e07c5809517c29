// XML namespace names used by Chorus. One object so a typo is a type error, not a silent mismatch.
export const NS = {
  // XML itself (fixed by the XML Namespaces spec; never redeclared)
  XML: 'http://www.w3.org/XML/1998/namespace',
  XMLNS: 'http://www.w3.org/2000/xmlns/',

  // RFC 6120 core
  STREAMS: 'http://etherx.jabber.org/streams',
  CLIENT: 'jabber:client',
  SERVER: 'jabber:server',
  STREAM_ERRORS: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  SASL_CB: 'urn:xmpp:sasl-cb:0',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  SESSION: 'urn:ietf:params:xml:ns:xmpp-session', // RFC 3921 legacy, still announced for old clients
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing', // RFC 7395 WebSocket
  HTTPBIND: 'http://jabber.org/protocol/httpbind', // XEP-0124 BOSH
  XBOSH: 'urn:xmpp:xbosh', // XEP-0206

  // server-to-server and components
  DIALBACK: 'jabber:server:dialback',
  DIALBACK_FEATURE: 'urn:xmpp:features:dialback',
  COMPONENT_ACCEPT: 'jabber:component:accept',

  // RFC 6121 IM
  ROSTER: 'jabber:iq:roster',
  ROSTER_VER: 'urn:xmpp:features:rosterver',
  PRE_APPROVAL: 'urn:xmpp:features:pre-approval',

  // XEPs
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
  DATA_FORMS: 'jabber:x:data',
  COMMANDS: 'http://jabber.org/protocol/commands',
  RSM: 'http://jabber.org/protocol/rsm',
  CAPS: 'http://jabber.org/protocol/caps',
  PING: 'urn:xmpp:ping',
  VERSION: 'jabber:iq:version',
  TIME: 'urn:xmpp:time',
  LAST: 'jabber:iq:last',
  DELAY: 'urn:xmpp:delay',
  PIE: 'urn:xmpp:pie:0', // XEP-0227
  PIE_SCRAM: 'urn:xmpp:pie:0#scram',
  SM: 'urn:xmpp:sm:3',
  CARBONS: 'urn:xmpp:carbons:2',
  FORWARD: 'urn:xmpp:forward:0',
  MAM: 'urn:xmpp:mam:2',
  STANZA_ID: 'urn:xmpp:sid:0',
  HINTS: 'urn:xmpp:hints',
  RECEIPTS: 'urn:xmpp:receipts',
  CHAT_STATES: 'http://jabber.org/protocol/chatstates',
  CSI: 'urn:xmpp:csi:0',
  BLOCKING: 'urn:xmpp:blocking',
  PRIVATE: 'jabber:iq:private',
  VCARD: 'vcard-temp',
  VCARD_UPDATE: 'vcard-temp:x:update',
  /** vCard4 (RFC 6351), as XEP-0292 carries it: by IQ, and in PEP at the node urn:xmpp:vcard4. */
  VCARD4: 'urn:ietf:params:xml:ns:vcard-4.0',
  PEP_VCARD4: 'urn:xmpp:vcard4',
  AVATAR_DATA: 'urn:xmpp:avatar:data',
  AVATAR_METADATA: 'urn:xmpp:avatar:metadata',
  PEP_VCARD_CONVERSION: 'urn:xmpp:pep-vcard-conversion:0',
  REGISTER: 'jabber:iq:register',
  REGISTER_FEATURE: 'http://jabber.org/features/iq-register',
  /** XEP-0379's pre-authentication token, and XEP-0445's stream feature for registering with one. */
  PARS: 'urn:xmpp:pars:0',
  IBR_TOKEN: 'urn:xmpp:ibr-token:0',
  INVITE: 'urn:xmpp:invite',
  OFFLINE: 'http://jabber.org/protocol/offline',
  PUBSUB: 'http://jabber.org/protocol/pubsub',
  PUBSUB_EVENT: 'http://jabber.org/protocol/pubsub#event',
  PUBSUB_OWNER: 'http://jabber.org/protocol/pubsub#owner',
  MUC: 'http://jabber.org/protocol/muc',
  MUC_USER: 'http://jabber.org/protocol/muc#user',
  MUC_ADMIN: 'http://jabber.org/protocol/muc#admin',
  MUC_OWNER: 'http://jabber.org/protocol/muc#owner',
  MUC_ROOMCONFIG: 'http://jabber.org/protocol/muc#roomconfig',
  MUC_ROOMINFO: 'http://jabber.org/protocol/muc#roominfo',
  MUC_REQUEST: 'http://jabber.org/protocol/muc#request',
  MUC_SELF_PING: 'http://jabber.org/protocol/muc#self-ping-optimization',
  MUC_STABLE_ID: 'http://jabber.org/protocol/muc#stable_id',
  OCCUPANT_ID: 'urn:xmpp:occupant-id:0',
  CONFERENCE: 'jabber:x:conference',
  PUSH: 'urn:xmpp:push:0',
  SASL2: 'urn:xmpp:sasl:2',
  BIND2: 'urn:xmpp:bind:0',
  FAST: 'urn:xmpp:fast:0',
} as const;

export type Namespace = (typeof NS)[keyof typeof NS];
