// Account commands, one implementation for both paths: the CLI calls handleAccountRequest directly on
// the DB when no node runs, and a running node (which holds the LevelDB lock) calls it from its admin
// socket (src/runtime/admin.ts) — plug in with `accountAdminHandlers(db, { hosts })`.
import { existsSync } from 'node:fs';
import { dataPaths } from '../config/defaults.ts';
import type { ChorusConfig } from '../config/types.ts';
import {
  AccountError, accountJid, createAccount, deleteAccount, importAccounts, listAccounts, setPassword,
  accountRoles, setRole,
} from '../storage/accounts.ts';
import { isLockedError, keys, openDb, type AnyDb } from '../storage/db.ts';
import { createInvite, inviteUri } from '../storage/invites.ts';
import { kvStorage } from '../storage/kv.ts';
import { parseJid } from '../xmpp/jid.ts';
import { loadModules } from '../xmpp/modules.ts';
import { AdminClient, type AdminResponse } from './admin-client.ts';
import { CliError } from './errors.ts';
import { runningNodes } from './processes.ts';

export const ACCOUNT_COMMANDS = ['adduser', 'passwd', 'deluser', 'users', 'import-users', 'invite', 'role'] as const;
export type AccountCommand = (typeof ACCOUNT_COMMANDS)[number];

export function isAccountCommand(cmd: unknown): cmd is AccountCommand {
  return (ACCOUNT_COMMANDS as readonly unknown[]).includes(cmd);
}

export interface AccountHandlerOptions {
  /** The node's hosts: accounts on other domains are refused. */
  hosts?: readonly string[];
  /** Removes a deleted account's data: in the user actor on a running node, else offlineCleanUp. */
  cleanUp: (bare: string) => Promise<void>;
}

type Args = Record<string, unknown>;

function str(args: Args, cmd: string, key: string): string {
  const v = args[key];
  if (typeof v !== 'string') throw new AccountError(`${cmd}: args.${key} must be a string`);
  return v;
}

function iterations(args: Args, cmd: string): number | undefined {
  const v = args.iterations;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new AccountError(`${cmd}: args.iterations must be a number`);
  return v;
}

/** Runs one account command; throws AccountError for anything the caller got wrong. */
async function run(db: AnyDb, cmd: AccountCommand, args: Args, opts: AccountHandlerOptions): Promise<unknown> {
  switch (cmd) {
    case 'adduser':
      return { jid: await createAccount(db, str(args, cmd, 'jid'), str(args, cmd, 'password'), { hosts: opts.hosts, iterations: iterations(args, cmd) }) };
    case 'passwd':
      return { jid: await setPassword(db, str(args, cmd, 'jid'), str(args, cmd, 'password'), { iterations: iterations(args, cmd) }) };
    case 'deluser':
      return deleteAccount(db, str(args, cmd, 'jid'), opts.cleanUp);
    case 'users': {
      const host = args.host === undefined || args.host === null ? undefined : str(args, cmd, 'host');
      return listAccounts(db, host);
    }
    case 'import-users': {
      const lines = args.lines;
      if (!Array.isArray(lines) || !lines.every((l) => typeof l === 'string')) {
        throw new AccountError('import-users: args.lines must be a list of "JID PASSWORD" strings');
      }
      return importAccounts(db, lines as string[], { hosts: opts.hosts, iterations: iterations(args, cmd) });
    }
    case 'role': {
      // Shows an account's roles, or gives or takes the admin role (args.admin).
      const bare = accountJid(str(args, cmd, 'jid'), opts.hosts);
      const storage = kvStorage(db);
      if (args.admin === undefined) return { jid: bare, roles: await accountRoles(storage, bare) };
      if (typeof args.admin !== 'boolean') throw new AccountError('role: args.admin must be true or false');
      return { jid: bare, roles: await setRole(storage, bare, 'admin', args.admin) };
    }
    case 'invite': {
      // An account invitation (XEP-0401): for a host, or reserving a username on it.
      const host = str(args, cmd, 'host');
      if (opts.hosts && !opts.hosts.includes(host)) throw new AccountError(`${host} is not a host of this server (hosts: ${opts.hosts.join(', ')})`);
      const username = args.username === undefined ? undefined : str(args, cmd, 'username');
      const days = args.days;
      if (typeof days !== 'number' || !(days >= 0)) throw new AccountError('invite: args.days must be a number of days (0: never expires)');
      if (args.admin !== undefined && typeof args.admin !== 'boolean') throw new AccountError('invite: args.admin must be true or false');
      const invite = await createInvite(kvStorage(db), { host, username, ttlMs: days === 0 ? null : days * 86_400_000, ...(args.admin ? { role: 'admin' as const } : {}) });
      return { uri: inviteUri(invite), expires: invite.expires, token: invite.token };
    }
  }
}

/**
 * Answer one admin request for an account command. Never throws: failures become
 * `{ ok: false, error }` with a message naming the problem.
 */
export async function handleAccountRequest(db: AnyDb, req: unknown, opts: AccountHandlerOptions): Promise<AdminResponse> {
  const r = (typeof req === 'object' && req !== null ? req : {}) as { id?: unknown; cmd?: unknown; args?: unknown };
  const id = typeof r.id === 'number' ? r.id : null;
  if (!isAccountCommand(r.cmd)) {
    return { id, ok: false, error: `not an account command: ${JSON.stringify(r.cmd)} (account commands: ${ACCOUNT_COMMANDS.join(', ')})` };
  }
  const args = (typeof r.args === 'object' && r.args !== null ? r.args : {}) as Args;
  try {
    return { id, ok: true, result: await run(db, r.cmd, args, opts) };
  } catch (e) {
    const msg = e instanceof AccountError ? e.message : `${r.cmd} failed: ${(e as Error).message}`;
    return { id, ok: false, error: msg };
  }
}

/** The same commands as handlers for src/runtime/admin.ts's AdminServer (throwing on failure). */
export function accountAdminHandlers(db: AnyDb, opts: AccountHandlerOptions): Map<string, (args: Args) => Promise<unknown>> {
  return new Map(ACCOUNT_COMMANDS.map((cmd) => [cmd, async (args: Args) => {
    const res = await handleAccountRequest(db, { id: 0, cmd, args }, opts);
    if (!res.ok) throw new AccountError(res.error);
    return res.result;
  }]));
}

/**
 * CLI side: send the command to the running node if its admin socket answers, else open the DB
 * ourselves. The JID is checked against config.hosts first so both paths give the same error.
 */
/** `newDatabase`: the operator named this database (--config, --new-database): no guard against a
 *  node running on another. */
export async function accountRequest(config: ChorusConfig, cmd: AccountCommand, args: Args, o: { newDatabase?: boolean } = {}): Promise<unknown> {
  if (typeof args.jid === 'string') {
    try {
      args = { ...args, jid: accountJid(args.jid, cmd === 'adduser' ? config.hosts : undefined) };
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  const paths = dataPaths(config);
  const client = await AdminClient.connect(paths.adminSocket);
  if (client) {
    try {
      // import-users derives thousands of verifiers: no deadline.
      return await client.request(cmd, args, cmd === 'import-users' ? 0 : 120_000);
    } finally {
      client.close();
    }
  }
  if (!existsSync(paths.db)) {
    // A node runs, but not on this data_dir: the command would read, or create, a database it never
    // reads. Unless the operator named this one (--config, --new-database).
    const others = o.newDatabase ? [] : runningNodes();
    const elsewhere = others.map((n) => `pid ${n.pid} in ${n.cwd}`).join('; ');
    const creates = cmd === 'adduser' || cmd === 'import-users' || cmd === 'invite';
    if (others.length && (creates || cmd === 'users')) {
      throw new CliError(`no database at ${paths.db}, and a node is running elsewhere (${elsewhere}): ` + (creates
        ? `this command would create an empty database that node never sees. Point it at the node's config (--config FILE or CHORUS_CONFIG), or pass --new-database`
        : `its accounts are not here. Point the command at the node's config (--config FILE or CHORUS_CONFIG)`));
    }
    // Nothing to read, and no reason to create a data directory just to say so.
    if (!creates) {
      if (cmd === 'users') return [];
      throw new CliError(`no account ${args.jid} (no database yet at ${paths.db})`);
    }
  }
  let db: AnyDb;
  try {
    db = await openDb(config.data_dir);
  } catch (e) {
    if (isLockedError(e)) {
      throw new CliError(`the database ${paths.db} is locked by another process, but nothing answers on ${paths.adminSocket}; ` +
        'is a node starting or stopping? Try again in a moment');
    }
    const code = (e as NodeJS.ErrnoException).code ?? ((e as { cause?: NodeJS.ErrnoException }).cause?.code);
    if (code === 'EACCES') throw new CliError(`cannot open ${paths.db}: permission denied (run chorus as the node's user)`);
    throw new CliError(`cannot open the database ${paths.db}: ${(e as Error).message}`);
  }
  try {
    const res = await handleAccountRequest(db, { id: 0, cmd, args }, { hosts: config.hosts, cleanUp: (bare) => offlineCleanUp(db, config, bare) });
    if (!res.ok) throw new CliError(res.error);
    return res.result;
  } finally {
    await db.close();
  }
}

/**
 * A deleted account's data when no node runs: the modules' `user/deleted` hooks with storage only
 * (nobody to notify), and the user actor's snapshot (its module state, e.g. the blocklist).
 */
async function offlineCleanUp(db: AnyDb, config: ChorusConfig, bare: string): Promise<void> {
  const modules = await loadModules(config.hosts, config.modules);
  await modules.run('user/deleted', { jid: parseJid(bare), storage: kvStorage(db), dataDir: config.data_dir, log: (level, text) => console.error(`[${level}] ${bare}: ${text}`) });
  await db.del(keys.snap(`user:${bare}`));
}

