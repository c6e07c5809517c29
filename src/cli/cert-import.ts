// `chorus cert import [DIR...]`, as `prosodyctl cert import`: finds the certificates in DIR (default
// Let's Encrypt's /etc/letsencrypt/live: one folder per certificate, fullchain.pem and privkey.pem)
// and copies, for each domain this server answers for — its hosts, their service domains
// (conference., upload., proxy.) and its components — the best one that serves it (covers the name,
// not expired, its key matches; the latest expiry) into data_dir/certs/imported/, where the node
// finds it at start and at `chorus reload`. Run it from certbot's deploy hook and renewals follow.
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataPaths } from '../config/defaults.ts';
import type { ChorusConfig } from '../config/types.ts';
import { importedDir, inspectCertificate } from '../net/tls.ts';
import { loadModules } from '../xmpp/modules.ts';

export const LETS_ENCRYPT_LIVE = '/etc/letsencrypt/live';

interface Candidate { cert: string; key: string }

export interface ImportOutcome {
  imported: Array<{ domain: string; from: string; notAfter: string }>;
  /** Domains no certificate in the folders serves. */
  missing: string[];
}

/** Certificate and key pairs in `dir` and its subfolders (two levels: live/<name>/). */
async function candidates(dir: string, depth = 2): Promise<Candidate[]> {
  let names: string[];
  try { names = (await readdir(dir)).sort(); } catch { return []; }
  const out: Candidate[] = [];
  const has = (n: string) => names.includes(n);
  if (has('fullchain.pem') && has('privkey.pem')) out.push({ cert: join(dir, 'fullchain.pem'), key: join(dir, 'privkey.pem') });
  for (const n of names) {
    const base = n.replace(/\.(crt|pem)$/, '');
    if (base !== n && n !== 'fullchain.pem' && n !== 'privkey.pem' && n !== 'cert.pem' && n !== 'chain.pem' && has(`${base}.key`)) out.push({ cert: join(dir, n), key: join(dir, `${base}.key`) });
  }
  if (depth > 0) {
    for (const n of names) {
      const p = join(dir, n);
      if ((await stat(p).catch(() => null))?.isDirectory()) out.push(...await candidates(p, depth - 1));
    }
  }
  return out;
}

/** The domains this server needs certificates for. */
export async function certificateDomains(config: ChorusConfig): Promise<string[]> {
  const modules = await loadModules(config.hosts, config.modules);
  return [...new Set([...config.hosts, ...config.hosts.flatMap((h) => modules.servicesOf(h).map((sd) => sd.domain)), ...Object.keys(config.components)])];
}

export async function importCertificates(config: ChorusConfig, dirs: string[]): Promise<ImportOutcome> {
  const found = (await Promise.all(dirs.map((d) => candidates(d)))).flat();
  const target = importedDir(dataPaths(config).certs);
  const outcome: ImportOutcome = { imported: [], missing: [] };
  for (const domain of await certificateDomains(config)) {
    let best: { c: Candidate; notAfter: Date } | null = null;
    for (const c of found) {
      const r = await inspectCertificate(domain, c.cert, c.key);
      if (r.problems.length || !r.notAfter) continue;
      if (!best || r.notAfter > best.notAfter) best = { c, notAfter: r.notAfter };
    }
    if (!best) { outcome.missing.push(domain); continue; }
    await mkdir(target, { recursive: true, mode: 0o700 });
    // Written beside and renamed: a node reloading meanwhile reads the old pair or the new, whole.
    for (const [from, ext] of [[best.c.cert, 'crt'], [best.c.key, 'key']] as const) {
      const to = join(target, `${domain}.${ext}`);
      await writeFile(`${to}.new`, await readFile(from), { mode: 0o600 });
      await rename(`${to}.new`, to);
    }
    outcome.imported.push({ domain, from: best.c.cert, notAfter: best.notAfter.toISOString() });
  }
  return outcome;
}
