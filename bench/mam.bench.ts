// Archive query latency (XEP-0313) on a big archive: a node in this process, an account whose
// archive holds N messages (100,000 by default, written straight into its store as the mam module
// lays them out), and a client over a real socket asking what clients ask: the newest page (what a
// client opening a chat does), the oldest, a page in the middle by id, one contact's messages, a
// day. Run: `node --import tsx bench/mam.bench.ts [--messages N] [--rounds R]`. Prints a table and
// writes bench/results/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { defaultConfig } from '../src/config/index.ts';
import { startNode } from '../src/node.ts';
import { createAccount } from '../src/storage/accounts.ts';
import { kvStorage } from '../src/storage/kv.ts';
import { archiveId, type ArchiveEntry } from '../src/modules/archive.ts';
import { mamKeys } from '../src/modules/mam.ts';
import { XmppClient } from './lib/client.ts';

const arg = (name: string, dflt: number) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? Number(process.argv[i + 1]) : dflt; };
const N = arg('messages', 100_000);
const ROUNDS = arg('rounds', 50);
const DOMAIN = 'bench.local';
const OWNER = `alice@${DOMAIN}`;
/** One message in RARE is with carol: a contact with a short history inside a long archive. */
const RARE = 1000;
const DAY = 86_400_000;

const freePort = () => new Promise<number>((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });

const dir = mkdtempSync(join(tmpdir(), 'chorus-mam-bench-'));
const config = defaultConfig(dir);
config.hosts = [DOMAIN];
config.data_dir = dir;
const port = await freePort();
config.listen = { ...config.listen, address: '127.0.0.1', c2s: port, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false };
config.c2s_require_encryption = false;
config.log_level = 'warn';
// The archive is seeded over a year: nothing of it may expire during the run.
config.modules.options = { ...config.modules.options, mam: { ...config.modules.options.mam, expiry_days: 0 } };
const node = await startNode(config, { log: (level, text) => { if (level === 'error') console.error(text); } });

try {
  await createAccount(node.runtime.db, OWNER, 'pw', { iterations: 4096 });
  // Seeded as the module writes them: one entry per message, ids in time order, over the last N minutes.
  const storage = kvStorage(node.runtime.db);
  const t0 = Date.now() - N * 60_000;
  const ids: string[] = [];
  const seedStart = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const ops = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      const at = t0 + j * 60_000;
      const peer = j % RARE === 0 ? `carol@${DOMAIN}` : `bob@${DOMAIN}`;
      const dir = j % 2 === 0 ? 'in' : 'out';
      const id = archiveId(at);
      ids.push(id);
      const xml = dir === 'in' ? `<message xmlns="jabber:client" from="${peer}/pc" to="${OWNER}/pc" type="chat" id="m${j}"><body>message number ${j}</body></message>`
        : `<message xmlns="jabber:client" from="${OWNER}/pc" to="${peer}/pc" type="chat" id="m${j}"><body>message number ${j}</body></message>`;
      ops.push({ type: 'put' as const, key: mamKeys.entry(OWNER, id), value: { with: peer, at, dir, xml } satisfies ArchiveEntry });
    }
    await storage.batch(ops);
  }
  const seedSeconds = (performance.now() - seedStart) / 1000;

  const client = new XmppClient({ host: '127.0.0.1', port, domain: DOMAIN, username: 'alice', password: 'pw', resource: 'pc' });
  await client.login();
  let results = 0;
  client.onStanza = (s) => { if (s.includes('urn:xmpp:mam:2') && s.startsWith('<message')) results++; };
  // Seeded as an archive kept before the contact index: the first query indexes it, once.
  const firstStart = performance.now();
  await client.iq(`<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></query>`, 'set');
  const firstMs = performance.now() - firstStart;
  console.log(`first query (indexes the archive by contact, once)  ${firstMs.toFixed(0)} ms`);

  const form = (fields: Record<string, string>) => `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>${Object.entries(fields).map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`).join('')}</x>`;
  const iso = (t: number) => new Date(t).toISOString();
  const queries: Array<{ name: string; body: (i: number) => string; expect: number }> = [
    { name: 'newest page (50, <before/>)', body: () => `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set></query>`, expect: 50 },
    { name: 'oldest page (50)', body: () => `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>50</max></set></query>`, expect: 50 },
    { name: 'a page in the middle (50 after an id)', body: (i) => `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>50</max><after>${ids[Math.floor(((i * 7919) % 97) / 97 * (N - 100))]}</after></set></query>`, expect: 50 },
    { name: 'one day (start/end, 50)', body: (i) => `<query xmlns='urn:xmpp:mam:2'>${form({ start: iso(t0 + ((i * 13) % 50) * DAY), end: iso(t0 + ((i * 13) % 50) * DAY + DAY) })}<set xmlns='http://jabber.org/protocol/rsm'><max>50</max></set></query>`, expect: 50 },
    { name: `one rare contact (with, 1 in ${RARE}, newest 50)`, body: () => `<query xmlns='urn:xmpp:mam:2'>${form({ with: `carol@${DOMAIN}` })}<set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set></query>`, expect: Math.min(50, Math.ceil(N / RARE)) },
  ];
  const rows: Array<{ query: string; p50: number; p99: number; max: number; results: number }> = [];
  for (const q of queries) {
    const times: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      results = 0;
      const start = performance.now();
      const reply = await client.iq(q.body(i), 'set');
      times.push(performance.now() - start);
      if (!reply.includes("type='result'") && !reply.includes('type="result"')) throw new Error(`${q.name}: ${reply.slice(0, 300)}`);
      if (results !== q.expect) throw new Error(`${q.name}: ${results} results, expected ${q.expect}`);
    }
    times.sort((a, b) => a - b);
    const pick = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
    rows.push({ query: q.name, p50: pick(0.5), p99: pick(0.99), max: times[times.length - 1]!, results: q.expect });
    console.log(`${q.name.padEnd(44)} p50 ${pick(0.5).toFixed(1).padStart(7)} ms   p99 ${pick(0.99).toFixed(1).padStart(7)} ms`);
  }
  await client.close();

  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const out = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(out, { recursive: true });
  const md = [
    `# Archive query latency: ${N.toLocaleString('en')} messages`, '',
    `- When: ${new Date().toISOString()}`,
    `- Command: \`node --import tsx bench/mam.bench.ts --messages ${N} --rounds ${ROUNDS}\``,
    `- Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, Node ${process.version}`,
    `- One account's archive of ${N.toLocaleString('en')} messages (seeded in ${seedSeconds.toFixed(1)} s, as kept before the contact index), one client over plain TCP on loopback, ${ROUNDS} queries of each kind one after another; time from sending the query to its <fin/> (every result message received before it)`,
    `- The first query indexed the archive by contact (once per archive): ${firstMs.toFixed(0)} ms`, '',
    '| query | p50 (ms) | p99 (ms) | max (ms) | results |', '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.query} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} | ${r.results} |`), '',
  ].join('\n');
  writeFileSync(join(out, `${stamp}-mam-query-${N}.md`), md);
  writeFileSync(join(out, `${stamp}-mam-query-${N}.json`), JSON.stringify({ messages: N, rounds: ROUNDS, seedSeconds, firstMs, rows }, null, 2));
  console.log(`wrote bench/results/${stamp}-mam-query-${N}.md`);
} finally {
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
}
