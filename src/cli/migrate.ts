// XEP-0227, the portable import/export format, for moving a community between servers.
// `chorus export FILE` writes every account of the served hosts with its SCRAM keys (XEP-0227's
// scram-credentials: no password is written, and users keep logging in with theirs) and what each
// module keeps for it (roster, vCard, private XML, offline messages, PEP nodes: their
// 'account/export' hooks). `chorus import FILE`, with the node stopped, reads such a file — ours,
// or another server's (ejabberd's `export_piefxis`: the older namespace, host files XInclude'd,
// passwords in the clear) — creates each account not yet here and hands its <user/> to the
// modules ('account/import'). An account that exists is left as it is.
import { open, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createAccount, listAccounts, type AccountRecord } from '../storage/accounts.ts';
import { keys, type AnyDb } from '../storage/db.ts';
import { kvStorage } from '../storage/kv.ts';
import { hashBytes, isHashName } from '../sasl/scram.ts';
import type { HashName, ScramCredentialsJson } from '../sasl/types.ts';
import { serialize, startTag, x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { parseJid, prepareLocalpart } from '../xmpp/jid.ts';
import type { ModuleSet } from '../xmpp/modules.ts';

/** XEP-0227 before it had a URN (what ejabberd still writes). */
const PIE_OLD = 'http://www.xmpp.org/extensions/xep-0227.html#ns';
const XINCLUDE = 'http://www.w3.org/2001/XInclude';


export async function exportServer(db: AnyDb, hosts: readonly string[], modules: ModuleSet, file: string): Promise<{ accounts: number }> {
  const storage = kvStorage(db);
  const out = await open(file, 'wx', 0o600); // an export holds every account's keys: never world-readable, never over another file
  let accounts = 0;
  try {
    await out.write(`<?xml version='1.0' encoding='UTF-8'?>\n${startTag('server-data', { xmlns: NS.PIE })}\n`);
    for (const host of hosts) {
      await out.write(`${startTag('host', { jid: host })}\n`);
      for (const bare of await listAccounts(db, host)) {
        const rec = await storage.get<AccountRecord>(keys.acct(bare));
        if (!rec) continue;
        const parts: XmlElement[] = [];
        await modules.run('account/export', { jid: parseJid(bare), storage, add: (el) => { parts.push(el); } });
        const user = x('user', { name: bare.slice(0, bare.lastIndexOf('@')), createdAt: rec.created },
          Object.entries(rec.scram).map(([mechanism, c]) => x('scram-credentials', { xmlns: NS.PIE_SCRAM, mechanism: `SCRAM-${mechanism}` },
            x('iter-count', null, String(c.iterations)), x('salt', null, c.salt), x('server-key', null, c.serverKey), x('stored-key', null, c.storedKey))),
          parts);
        await out.write(`${serialize(user)}\n`);
        accounts++;
      }
      await out.write('</host>\n');
    }
    await out.write('</server-data>\n');
  } finally {
    await out.close();
  }
  return { accounts };
}

export interface ImportReport { imported: string[]; skipped: Array<{ jid: string; why: string }>; notes: string[] }

/** The <host/> elements of a file, following XInclude (ejabberd writes one file per host). */
async function hostsOf(file: string): Promise<XmlElement[]> {
  const root = parseElement((await readFile(file, 'utf8')).replace(/^\uFEFF?\s*<\?xml[^?]*\?>/, ''), NS.PIE);
  const ns = root.getXmlns();
  if (ns !== NS.PIE && ns !== PIE_OLD) throw new Error(`${file}: not XEP-0227 (its root is <${root.name}> in ${ns || 'no namespace'})`);
  if (root.localName === 'host') return [root];
  const out: XmlElement[] = [];
  for (const c of root.getChildren()) {
    if (c.localName === 'host') out.push(c);
    else if (c.localName === 'include' && c.getXmlns() === XINCLUDE && c.attr('href')) out.push(...await hostsOf(resolve(dirname(file), c.attr('href')!)));
  }
  return out;
}

/** SCRAM keys as XEP-0227 (1.1) carries them, by hash; none when the user has none we can use.
 *  ejabberd (23.01) base64-encodes its already base64 values once more: keys of the wrong length
 *  that are right once decoded twice are read so. */
function scramOf(user: XmlElement, note: (text: string) => void): Partial<Record<HashName, ScramCredentialsJson>> {
  const out: Partial<Record<HashName, ScramCredentialsJson>> = {};
  const decoded = (b64: string) => Buffer.from(b64, 'base64');
  for (const c of user.getChildren('scram-credentials', NS.PIE_SCRAM)) {
    const hash = (c.attr('mechanism') ?? '').replace(/^SCRAM-/, '');
    const iterations = Number(c.getChildText('iter-count'));
    let [salt, serverKey, storedKey] = ['salt', 'server-key', 'stored-key'].map((n) => c.getChildText(n)?.trim() ?? '');
    if (!isHashName(hash) || !Number.isInteger(iterations) || iterations < 1 || !salt || !serverKey || !storedKey) { note(`SCRAM keys for ${c.attr('mechanism')} left out: incomplete`); continue; }
    const size = hashBytes(hash);
    if (decoded(serverKey!).length !== size && decoded(decoded(serverKey!).toString()).length === size) {
      [salt, serverKey, storedKey] = [salt, serverKey, storedKey].map((v) => decoded(v!).toString());
    }
    if (decoded(serverKey!).length !== size || decoded(storedKey!).length !== size) { note(`SCRAM keys for ${c.attr('mechanism')} left out: not ${size}-byte keys`); continue; }
    out[hash] = { salt: salt!, iterations, storedKey: storedKey!, serverKey: serverKey! };
  }
  return out;
}

export async function importServer(db: AnyDb, hosts: readonly string[], modules: ModuleSet, file: string, now = Date.now): Promise<ImportReport> {
  const storage = kvStorage(db);
  const report: ImportReport = { imported: [], skipped: [], notes: [] };
  for (const host of await hostsOf(file)) {
    const domain = host.attr('jid') ?? '';
    const users = host.getChildren().filter((u) => u.localName === 'user');
    if (!hosts.includes(domain)) { report.notes.push(`host ${domain || '(no jid)'}: not served here, ${users.length} accounts left out`); continue; }
    for (const user of users) {
      let bare: string;
      try { bare = `${prepareLocalpart(user.attr('name') ?? '')}@${domain}`; } catch (e) {
        report.skipped.push({ jid: `${user.attr('name')}@${domain}`, why: `not a valid username: ${(e as Error).message}` });
        continue;
      }
      if (await storage.get(keys.acct(bare)) !== undefined) { report.skipped.push({ jid: bare, why: 'exists here already (left as it is)' }); continue; }
      const scram = scramOf(user, (text) => report.notes.push(`${bare}: ${text}`));
      const password = user.attr('password');
      if (Object.keys(scram).length) {
        // The keys as they are: only the hashes the other server kept (a client choosing another
        // SCRAM hash is refused until the password is set here again; PLAIN works with any).
        await storage.put(keys.acct(bare), { scram, created: user.attr('createdAt') ?? new Date(now()).toISOString() });
      } else if (password) {
        await createAccount(db, bare, password);
      } else {
        report.skipped.push({ jid: bare, why: 'no password and no SCRAM keys' });
        continue;
      }
      await modules.run('account/import', { jid: parseJid(bare), storage, user, now, note: (text) => report.notes.push(`${bare}: ${text}`) });
      report.imported.push(bare);
    }
  }
  return report;
}
