// SCRAM for the load generator, using the project's SASL library so the math is written once. The
// salted password is cached per (hash, salt, iterations, password), as mobile clients cache it: the
// generator's PBKDF2 then stays off the hot path (it never counts as server CPU anyway).
import { ScramClient, type SaltedPasswordCache } from '../../src/sasl/scram.ts';
import { stanzaName } from './parser.ts';

const cache = new Map<string, SaltedPasswordCache>();
const MAX_CACHE = 100_000;

function saltKey(hash: string, password: string, serverFirst: string): string {
  const s = /(?:^|,)s=([^,]*)/.exec(serverFirst)?.[1] ?? '';
  const i = /(?:^|,)i=([^,]*)/.exec(serverFirst)?.[1] ?? '';
  return `${hash}\0${s}\0${i}\0${password}`;
}

/** Runs a SCRAM exchange over an XMPP stream; `write` sends raw XML, `next` yields the next stanza.
 *  With `warmOnly`, stops after the server's challenge: the salted password is cached, the exchange
 *  aborted (a warm-up, so a measured login storm finds every client's salted password cached). */
export async function scramLogin(mech: string, username: string, password: string,
  write: (s: string) => void, next: () => Promise<string>, warmOnly = false, sasl2?: string): Promise<string> {
  const hash = mech.replace(/^SCRAM-/, '').replace(/-PLUS$/, ''); // 'SHA-1', 'SHA-256', 'SHA-512'
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const unb64 = (s: string) => Buffer.from(s.replace(/<[^>]*>/g, '').trim(), 'base64').toString('utf8');
  // `sasl2`: XEP-0388's profile, with these extra children of <authenticate/> (user agent, Bind 2).
  const ns = sasl2 === undefined ? 'urn:ietf:params:xml:ns:xmpp-sasl' : 'urn:xmpp:sasl:2';
  const first = new ScramClient({ hash, username, password });
  write(sasl2 === undefined
    ? `<auth xmlns='${ns}' mechanism='${mech}'>${b64(first.clientFirst())}</auth>`
    : `<authenticate xmlns='${ns}' mechanism='${mech}'><initial-response>${b64(first.clientFirst())}</initial-response>${sasl2}</authenticate>`);
  const ch = await next();
  if (stanzaName(ch) !== 'challenge') throw new Error('SCRAM: expected a challenge, got ' + ch.slice(0, 200));
  const serverFirst = unb64(ch);
  const key = saltKey(hash, password, serverFirst);
  const cached = cache.get(key);
  if (warmOnly) {
    if (!cached) {
      const c = new ScramClient({ hash, username, password, nonce: nonceOf(first) });
      c.clientFirst();
      await c.clientFinal(serverFirst);
      if (c.salted && cache.size < MAX_CACHE) cache.set(key, c.salted);
    }
    write(`<abort xmlns='${ns}'/>`);
    return ch;
  }
  // A client built with the cache must reuse the nonce already sent in client-first.
  const c = cached ? new ScramClient({ hash, username, password, cached, nonce: nonceOf(first) }) : first;
  if (cached) c.clientFirst();
  write(`<response xmlns='${ns}'>${b64(await c.clientFinal(serverFirst))}</response>`);
  const ok = await next();
  if (stanzaName(ok) !== 'success') throw new Error('SCRAM authentication failed: ' + ok.slice(0, 200));
  const final = sasl2 === undefined ? ok : /<additional-data>([^<]*)<\/additional-data>/.exec(ok)?.[1] ?? '';
  if (!c.verifyServerFinal(unb64(final))) throw new Error('SCRAM: server signature did not verify');
  if (!cached && c.salted && cache.size < MAX_CACHE) cache.set(key, c.salted);
  return ok;
}

function nonceOf(c: ScramClient): string {
  return /,r=([^,]*)$/.exec(c.clientFirst())![1];
}
