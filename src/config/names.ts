// Domain and bare-JID checks used by config validation and the account commands. They return the
// normalised form, or a short reason that callers put into "expected …" messages.

export type NameCheck = string | { problem: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A virtual host domain (ASCII; lower-cased). Rejects ports, paths, JIDs and IP-less junk. */
export function checkDomain(input: string): NameCheck {
  const d = input.trim().toLowerCase().replace(/\.$/, '');
  if (d === '') return { problem: 'empty' };
  if (d.length > 253) return { problem: 'longer than 253 characters' };
  if (/[@/]/.test(d)) return { problem: 'a domain has no "@" or "/"' };
  if (d.includes(':')) return { problem: 'no port or scheme; ports go under listen' };
  for (const label of d.split('.')) {
    if (!LABEL.test(label)) return { problem: `bad label "${label}"` };
  }
  return d;
}

// Characters RFC 7622 excludes from localparts, whitespace, controls, and "!" (the storage key separator).
const LOCAL_FORBIDDEN = /["&'/:<>@!\s\p{Cc}]/u;

/** A bare JID `local@domain`, normalised (domain lower-cased, localpart NFC + lower-cased). */
export function checkBareJid(input: string): NameCheck {
  const s = input.trim();
  const at = s.lastIndexOf('@');
  if (at < 0) return { problem: 'missing "@"' };
  if (s.includes('/')) return { problem: 'a bare JID has no "/resource"' };
  const local = s.slice(0, at).normalize('NFC').toLowerCase();
  if (local === '') return { problem: 'empty user part' };
  if (Buffer.byteLength(local) > 1023) return { problem: 'user part longer than 1023 bytes' };
  if (LOCAL_FORBIDDEN.test(local)) return { problem: 'user part contains a forbidden character' };
  const domain = checkDomain(s.slice(at + 1));
  if (typeof domain !== 'string') return { problem: `domain: ${domain.problem}` };
  return `${local}@${domain}`;
}
