// HTTP File Upload (XEP-0363): a service at upload.<host> (its actor, actors/upload_slots, hands out slots)
// and the files themselves on the node's HTTP listeners (/upload/<slot>/<name>, here, on the main
// thread). A slot is a PUT URL signed with the node secret (no state to look up when the file comes)
// and a GET URL; what a user keeps, slots not yet used included, counts against a quota. Files go
// to disk as they arrive (never whole in memory) under data_dir/upload/<slot>/, keep their content
// type, expire after a configured time, and go with the account.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, link, mkdir, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defineModule, type HttpContext, type Storage } from '../xmpp/module.ts';
import { keyOf } from '../storage/db.ts';

const options = {
  enabled: { type: 'boolean', default: true, doc: 'Serve file sharing on this host.' },
  host: { type: 'string', default: '', doc: 'The upload service\'s domain (default upload.<host>).' },
  name: { type: 'string', default: 'File sharing', doc: 'The service name shown in disco.' },
  url: { type: 'string', default: '', doc: 'The public base URL of the files (default https://<service domain>:<listen.https>, or http:// with listen.http when https is off); set it when a reverse proxy serves them.' },
  max_file_bytes: { type: 'number', default: 104_857_600, min: 1, max: 2 ** 40, doc: 'The largest file one may share (advertised in disco, XEP-0128).' },
  quota_bytes: { type: 'number', default: 1_073_741_824, min: 1, max: 2 ** 50, doc: 'What one account may keep at once (files not yet expired, slots not yet used).' },
  expires_after_seconds: { type: 'number', default: 604_800, min: 1, max: 10 * 365 * 86_400, doc: 'How long a file is kept (a week by default, as Prosody does).' },
  slot_seconds: { type: 'number', default: 300, min: 10, max: 86_400, doc: 'How long a slot\'s PUT URL may be used.' },
} as const;

/** What the service's actor reads (ServiceDomain.settings). */
export interface UploadSettings {
  host: string;
  url: string;
  maxFileBytes: number;
  quotaBytes: number;
  expiresSeconds: number;
  slotSeconds: number;
}

export const UPLOAD_NS = 'urn:xmpp:http:upload:0';
const PREFIX = '/upload/';

/** What an account has: a slot not used yet (until its PUT URL expires), or a file (until it
 *  expires). `upload!<bare JID>!<slot>`. */
export interface UploadRecord { slot: string; size: number; state: 'slot' | 'stored'; until: number }
export const uploadKeys = {
  of: (owner: string) => `${keyOf('upload', owner)}!`,
  one: (owner: string, slot: string) => keyOf('upload', owner, slot),
};

/** What the PUT URL's Authorization header carries, signed: the slot and all the file may be. */
export interface SlotGrant { slot: string; name: string; size: number; type: string; owner: string; until: number }

const slotKey = (secret: string) => createHmac('sha256', secret).update('chorus upload slots').digest();
const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export function signSlot(secret: string, g: SlotGrant): string {
  const payload = b64(JSON.stringify(g));
  return `${payload}.${b64(createHmac('sha256', slotKey(secret)).update(payload).digest())}`;
}

/** The grant a token proves, or null (bad signature, malformed). */
export function verifySlot(secret: string, token: string): SlotGrant | null {
  const [payload, mac] = token.split('.');
  if (!payload || !mac) return null;
  const want = createHmac('sha256', slotKey(secret)).update(payload).digest();
  const got = Buffer.from(mac, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  try { return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as SlotGrant; } catch { return null; }
}

export const newSlotId = () => randomBytes(18).toString('base64url');

/** A file name as it goes in the URL: its last path segment, without control characters. */
export function safeName(name: string): string {
  const base = name.split(/[/\\]/).pop()!.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return base.slice(0, 200) || 'file';
}

/** The URL of a slot's file under the service's base URL. */
export const fileUrl = (base: string, slot: string, name: string) => `${base.replace(/\/+$/, '')}${PREFIX}${slot}/${encodeURIComponent(name)}`;

/** What one account keeps now, unused slots included. */
export async function usage(storage: Pick<Storage, 'range'>, owner: string, now: number): Promise<number> {
  const rows = await storage.range<UploadRecord>(uploadKeys.of(owner));
  return rows.reduce((n, [, r]) => (r.until > now ? n + r.size : n), 0);
}

// ---- the files, over HTTP ----------------------------------------------------------------------------

interface Meta { name: string; type: string; size: number; owner: string; expires: number }
const dirOf = (dataDir: string, slot: string) => join(dataDir, 'upload', slot);
const SLOT_RE = /^[A-Za-z0-9_-]{16,64}$/;

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, PUT, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type',
  'Access-Control-Max-Age': '86400',
};

async function handle(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  const path = (req.url ?? '').split('?', 1)[0]!.slice(PREFIX.length);
  const [slot, rawName, ...rest] = path.split('/');
  let name: string;
  try { name = decodeURIComponent(rawName ?? ''); } catch { name = ''; }
  if (!slot || !SLOT_RE.test(slot) || !name || rest.length) { ctx.text(res, 404, 'Not found', CORS); return; }
  switch (req.method) {
    case 'OPTIONS': res.writeHead(204, CORS); res.end(); return;
    case 'PUT': return put(req, res, ctx, slot, name);
    case 'GET': case 'HEAD': return get(req, res, ctx, slot, name);
    default: ctx.text(res, 405, 'Method not allowed', { ...CORS, Allow: 'GET, HEAD, PUT, OPTIONS' });
  }
}

const mediaType = (t: string | undefined) => (t ?? '').split(';', 1)[0]!.trim().toLowerCase();

async function put(req: IncomingMessage, res: ServerResponse, ctx: HttpContext, slot: string, name: string): Promise<void> {
  const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  const g = auth ? verifySlot(ctx.secret, auth[1]!) : null;
  if (!g || g.slot !== slot || g.name !== name) { ctx.text(res, 403, 'This is not a slot for this file', CORS); return; }
  if (g.until < ctx.now()) { ctx.text(res, 403, 'The slot has expired: ask for a new one', CORS); return; }
  const length = req.headers['content-length'];
  if (length === undefined) { ctx.text(res, 411, 'Content-Length is required', CORS); return; }
  if (Number(length) !== g.size) { ctx.text(res, 400, `The slot is for ${g.size} bytes, not ${length}`, CORS); return; }
  if (g.type && mediaType(req.headers['content-type']) !== mediaType(g.type)) { ctx.text(res, 400, `The slot is for ${g.type}`, CORS); return; }
  const dir = dirOf(ctx.dataDir, slot);
  const used = () => ctx.text(res, 409, 'This slot has been used', CORS);
  if (await access(join(dir, 'file')).then(() => true, () => false)) { used(); return; }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let got = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      got += chunk.length;
      ctx.count('upload_received_bytes', chunk.length);
      done(got > g.size ? new Error('more than the slot allows') : null, chunk);
    },
  });
  try {
    // 'wx': a second PUT to the same slot (or one in progress) is refused, never mixed in.
    await pipeline(req, count, createWriteStream(join(dir, 'file.part'), { flags: 'wx', mode: 0o600 }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') { used(); return; }
    await rm(join(dir, 'file.part'), { force: true });
    if (!res.headersSent && !req.destroyed) ctx.text(res, got > g.size ? 413 : 400, `Upload failed: ${(e as Error).message}`, CORS);
    return;
  }
  if (got !== g.size) { await rm(join(dir, 'file.part'), { force: true }); ctx.text(res, 400, `Got ${got} bytes of ${g.size}`, CORS); return; }
  const settings = ctx.services.find((s) => s.host === g.owner.split('@').pop())?.settings as UploadSettings | undefined;
  const expires = ctx.now() + (settings?.expiresSeconds ?? options.expires_after_seconds.default) * 1000;
  const meta: Meta = { name, type: g.type || 'application/octet-stream', size: g.size, owner: g.owner, expires };
  // link() creates the file only if there is none: of two PUTs that both got this far, one wins.
  try { await link(join(dir, 'file.part'), join(dir, 'file')); } catch { await unlink(join(dir, 'file.part')); used(); return; }
  await unlink(join(dir, 'file.part'));
  await writeFile(join(dir, 'meta.json'), JSON.stringify(meta), { mode: 0o600 });
  await ctx.storage.put(uploadKeys.one(g.owner, slot), { slot, size: g.size, state: 'stored', until: expires } satisfies UploadRecord);
  ctx.log('info', `${g.owner} shared ${g.size} bytes (${slot})`);
  ctx.text(res, 201, 'Created', CORS);
}

async function readMeta(dataDir: string, slot: string): Promise<Meta | null> {
  try { return JSON.parse(await readFile(join(dirOf(dataDir, slot), 'meta.json'), 'utf8')) as Meta; } catch { return null; }
}

async function get(req: IncomingMessage, res: ServerResponse, ctx: HttpContext, slot: string, name: string): Promise<void> {
  const meta = await readMeta(ctx.dataDir, slot);
  if (!meta || meta.name !== name || meta.expires < ctx.now()) { ctx.text(res, 404, 'Not found', CORS); return; }
  const headers: Record<string, string | number> = {
    ...CORS,
    'Content-Type': meta.type,
    'Accept-Ranges': 'bytes',
    'Cache-Control': `public, max-age=${Math.max(0, Math.floor((meta.expires - ctx.now()) / 1000))}, immutable`,
    // Shared files are shown, never run in this origin.
    'Content-Security-Policy': "default-src 'none'; sandbox",
    'X-Content-Type-Options': 'nosniff',
  };
  let start = 0, end = meta.size - 1, status = 200;
  const range = req.headers.range;
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (m && (m[1] || m[2])) {
      if (m[1]) { start = Number(m[1]); if (m[2]) end = Math.min(Number(m[2]), end); } else start = Math.max(0, meta.size - Number(m[2]));
      if (start > end || start >= meta.size) { ctx.text(res, 416, 'Range not satisfiable', { ...CORS, 'Content-Range': `bytes */${meta.size}` }); return; }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${meta.size}`;
    }
  }
  headers['Content-Length'] = meta.size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || meta.size === 0) { res.end(); return; }
  const file = createReadStream(join(dirOf(ctx.dataDir, slot), 'file'), { start, end });
  file.on('data', (chunk) => ctx.count('upload_sent_bytes', chunk.length));
  await pipeline(file, res);
}

/** Expired files and slots never used go; so does what a PUT left half-written. */
async function expire(ctx: HttpContext): Promise<void> {
  const now = ctx.now();
  const root = join(ctx.dataDir, 'upload');
  let slots: string[] = [];
  try { slots = await readdir(root); } catch { /* nothing shared yet */ }
  for (const slot of slots) {
    const meta = await readMeta(ctx.dataDir, slot);
    if (meta && meta.expires >= now) continue;
    if (!meta) {
      // A PUT in progress keeps writing its part file: only one idle for a day is abandoned.
      const part = await stat(join(root, slot, 'file.part')).catch(() => null);
      if (part && now - part.mtimeMs < 86_400_000) continue;
    }
    await rm(join(root, slot), { recursive: true, force: true });
    if (meta) await ctx.storage.del(uploadKeys.one(meta.owner, slot));
  }
  for (const [key, r] of await ctx.storage.range<UploadRecord>(`${keyOf('upload')}!`)) {
    if (r.state === 'slot' && r.until < now) await ctx.storage.del(key);
  }
}

export default defineModule({
  name: 'upload',
  description: 'HTTP File Upload (XEP-0363): a service at upload.<host>, files on the HTTP listeners.',
  xeps: [{ xep: 363, version: '1.1.0', status: 'complete', note: 'slots signed with the node secret; size limit (XEP-0128 in disco), per-account quota, expiry' }],
  options,
  storage: ['upload'],
  services: (host, o) => (o.enabled ? [{
    domain: o.host || `upload.${host}`, kind: 'upload_slots', name: o.name, whole: true,
    settings: {
      host, url: o.url, maxFileBytes: o.max_file_bytes, quotaBytes: o.quota_bytes, expiresSeconds: o.expires_after_seconds, slotSeconds: o.slot_seconds,
    } satisfies UploadSettings,
  }] : []),
  http: [{
    prefix: PREFIX, handle, every: { ms: 10_000, run: expire },
    counters: { upload_received_bytes: 'Bytes of shared files received (PUT).', upload_sent_bytes: 'Bytes of shared files sent (GET).' },
  }],
  setup(m) {
    // An account's files go with it: their records and the files themselves.
    m.hook('user/deleted', async (ev) => {
      const rows = await ev.storage.range<UploadRecord>(uploadKeys.of(ev.jid.toBareString()));
      for (const [key, r] of rows) {
        await rm(dirOf(ev.dataDir, r.slot), { recursive: true, force: true });
        await ev.storage.del(key);
      }
    });
  },
});
