// Domain and bare-JID checks for config validation and the account commands, on top of the RFC 7622
// rules in src/xmpp/jid.ts. They return the normalised form, or a short reason that callers put into
// "expected …" messages.
import { isIP } from 'node:net';
import { JidError, parseJid, prepareDomainpart } from '../xmpp/jid.ts';

export type NameCheck = string | { problem: string };

const reason = (e: unknown): { problem: string } => {
  if (e instanceof JidError) return { problem: e.message };
  throw e;
};

/** A virtual host domain, normalised (lower case, IDNA U-labels, no trailing dot). */
export function checkDomain(input: string): NameCheck {
  const s = input.trim();
  if (s === '') return { problem: 'empty' };
  if (/[@/]/.test(s)) return { problem: 'a domain has no "@" or "/"' };
  if (s.includes(':') && !s.startsWith('[')) return { problem: 'no port or scheme; ports go under listen' };
  let d: string;
  try {
    d = prepareDomainpart(s);
  } catch (e) {
    return reason(e);
  }
  // Certificates, SNI and SRV all want names; an IP literal as a virtual host is always a mistake here.
  if (isIP(d.replace(/^\[|\]$/g, ''))) return { problem: 'an IP address; use a domain name' };
  return d;
}

/** A bare JID `local@domain`, normalised per RFC 7622 (PRECIS UsernameCaseMapped localpart). */
export function checkBareJid(input: string): NameCheck {
  const s = input.trim();
  if (!s.includes('@')) return { problem: 'missing "@"' };
  let jid;
  try {
    jid = parseJid(s);
  } catch (e) {
    return reason(e);
  }
  if (jid.resource !== '') return { problem: 'a bare JID has no "/resource"' };
  if (jid.local === '') return { problem: 'missing the user part before "@"' };
  return jid.toBareString();
}
