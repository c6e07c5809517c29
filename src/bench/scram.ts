// SCRAM for the load generator comes from the project's SASL library (src/sasl/scram.ts), so the math
// is written once. That module is being written alongside this one: until it exists, SCRAM runs fail
// with a clear message and PLAIN works. Loaded lazily so PLAIN-only runs never need it.
import { stanzaName } from './parser.ts';

// Path kept in a variable so the type checker does not require the file to exist yet.
const SCRAM_MODULE = '../sasl/scram.ts';

// The shape expected of ScramClient; adjust here (only here) if the library's API differs.
interface ScramClientLike {
  clientFirst(): string;
  clientFinal(serverFirst: string): string | Promise<string>;
  verifyServerFinal(serverFinal: string): boolean | Promise<boolean>;
}
type ScramCtor = new (opts: { hash: string; username: string; password: string }) => ScramClientLike;

let ctor: Promise<ScramCtor> | null = null;
function loadScram(): Promise<ScramCtor> {
  ctor ??= import(SCRAM_MODULE).then(
    (m: { ScramClient?: ScramCtor }) => {
      if (!m.ScramClient) throw new Error('src/sasl/scram.ts does not export ScramClient yet; use --mech PLAIN');
      return m.ScramClient;
    },
    () => { throw new Error('SCRAM needs src/sasl/scram.ts (ScramClient), which does not exist yet; use --mech PLAIN'); },
  );
  return ctor;
}

/** Runs a SCRAM exchange over an XMPP stream; `write` sends raw XML, `next` yields the next stanza. */
export async function scramLogin(mech: string, username: string, password: string,
  write: (s: string) => void, next: () => Promise<string>): Promise<void> {
  const Scram = await loadScram();
  const hash = mech.replace(/^SCRAM-/, '').replace(/-PLUS$/, ''); // 'SHA-1', 'SHA-256', 'SHA-512'
  const c = new Scram({ hash, username, password });
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const unb64 = (s: string) => Buffer.from(s.replace(/<[^>]*>/g, '').trim(), 'base64').toString('utf8');
  write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mech}'>${b64(c.clientFirst())}</auth>`);
  const ch = await next();
  if (stanzaName(ch) !== 'challenge') throw new Error('SCRAM: expected a challenge, got ' + ch.slice(0, 200));
  write(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${b64(await c.clientFinal(unb64(ch)))}</response>`);
  const ok = await next();
  if (stanzaName(ok) !== 'success') throw new Error('SCRAM authentication failed: ' + ok.slice(0, 200));
  if (!(await c.verifyServerFinal(unb64(ok)))) throw new Error('SCRAM: server signature did not verify');
}
