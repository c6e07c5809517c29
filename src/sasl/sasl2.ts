// XEP-0388's <success/>, written by the session (a login) and by the connection (a stream resumed
// inside the login, which only the connection that takes the stream over can answer).
import { serialize, x } from '../xml/builder.ts';
import { NS } from '../xml/namespaces.ts';

/** The final SASL data (base64), who is authenticated (the full JID once bound or resumed), and
 *  what was done inline (serialized: Bind 2's <bound/>, XEP-0198's answer, a FAST token). */
export function sasl2SuccessXml(data: string | null | undefined, authzid: string, inline: readonly string[] = []): string {
  const head = serialize(x('success', { xmlns: NS.SASL2 }, data ? x('additional-data', null, data) : null, x('authorization-identifier', null, authzid)));
  return inline.length ? `${head.slice(0, -'</success>'.length)}${inline.join('')}</success>` : head;
}
