// The `chorus` command. User mistakes end as one line on stderr and exit code 1; only genuine bugs
// print a stack trace.
import { landingUrl } from '../modules/invites.ts';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfig } from '../config/load.ts';
import { checkDomain } from '../config/names.ts';
import { dataPaths } from '../config/defaults.ts';
import type { ChorusConfig } from '../config/types.ts';
import { AccountError, accountJid, type ImportResult } from '../storage/accounts.ts';
import { DataDirError, usePrivateUmask } from '../storage/private-files.ts';
import { accountRequest } from './accounts.ts';
import { AdminClient } from './admin-client.ts';
import { runCheck } from './check.ts';
import { runningNodes } from './processes.ts';
import { CliError } from './errors.ts';
import { readPassword } from './password.ts';
import { OperatorError, rootCause } from '../operator-error.ts';
import type { TlsReloadResult } from '../net/tls.ts';
import type { OperatorCommand } from '../xmpp/module.ts';
import type { AnyDb } from '../storage/db.ts';

export { CliError };

interface Parsed { pos: string[]; flags: Map<string, string | true> }
interface Command {
  usage: string;
  summary: string;
  /** Extra lines for --help. */
  details: string;
  /** Flags this command takes: true = takes a value. --config and --help are always allowed. */
  flags: Record<string, boolean>;
  args: [min: number, max: number];
  run(p: Parsed, io: Io): Promise<number>;
}
interface Io { out(line: string): void; err(line: string): void }

const CONFIG_HELP = '  --config FILE   the YAML config (default: $CHORUS_CONFIG, else /etc/chorus/chorus.yaml, else ./chorus.yaml, else\n' +
  '                  built-in defaults with data in ./data); with none given, a command for the running node that\n' +
  '                  finds none answering there goes to the one node running on this machine';

const NEW_DATABASE_HELP = '  --new-database    create the data_dir\'s database even though a node runs elsewhere on this machine\n' +
  '                    (an explicit --config says so too)';

const COMMANDS: Record<string, Command> = {
  start: {
    usage: 'chorus start [--config FILE]',
    summary: 'run the node in the foreground (Ctrl-C or SIGTERM stops it cleanly)',
    details: '',
    flags: {}, args: [0, 0],
    async run(p, io) {
      const config = await configFrom(p, io);
      const running = await AdminClient.connect(dataPaths(config).adminSocket);
      if (running) {
        running.close();
        throw new CliError(`a node is already running on ${config.data_dir} (its admin socket answers); stop it first`);
      }
      const mod = (await import('../node.ts')) as unknown as {
        startNode?: (config: ChorusConfig) => Promise<{ stop(): Promise<void> }>;
      };
      if (typeof mod.startNode !== 'function') throw new CliError('this build cannot start a node: src/node.ts exports no startNode(config)');
      const node = await mod.startNode(config);
      await new Promise<void>((done) => {
        let stopping = false;
        const onSignal = (sig: NodeJS.Signals) => {
          if (stopping) {
            process.stderr.write(`chorus: ${sig} again; exiting without a clean stop\n`);
            process.exit(1);
          }
          stopping = true;
          node.stop().then(done, (e: Error) => {
            process.stderr.write(`chorus: stopping failed: ${e.message}\n`);
            process.exitCode = 1;
            done();
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      return Number(process.exitCode ?? 0);
    },
  },

  adduser: {
    usage: 'chorus adduser JID [PASSWORD] [--iterations N] [--new-database]',
    summary: 'create an account',
    details: [
      'Without PASSWORD, asks for it on the terminal (not echoed, twice), or reads one line from stdin',
      'when that is a pipe (PASSWORD on the command line is visible to other users in ps).',
      'Only SCRAM-SHA-1/256/512 verifiers are stored, never the password.',
      '  --iterations N    PBKDF2 iterations (default 4096)',
      NEW_DATABASE_HELP,
    ].join('\n'),
    flags: { iterations: true, 'new-database': false }, args: [1, 2],
    async run(p, io) {
      const config = await configFrom(p, io);
      const jid = userJid(p.pos[0]!, config.hosts);
      const password = p.pos[1] ?? await readPassword(jid, { confirm: true });
      const r = await accountRequest(config, 'adduser', { jid, password, iterations: intFlag(p, 'iterations') }, { newDatabase: named(p) }) as { jid: string };
      io.out(`created ${r.jid}`);
      return 0;
    },
  },

  passwd: {
    usage: 'chorus passwd JID [PASSWORD] [--iterations N]',
    summary: "change an account's password",
    details: 'Without PASSWORD, asks for the new one on the terminal (not echoed, twice), or reads one line from stdin\n' +
      'when that is a pipe (PASSWORD on the command line is visible to other users in ps).\n  --iterations N  PBKDF2 iterations (default 4096)',
    flags: { iterations: true }, args: [1, 2],
    async run(p, io) {
      const config = await configFrom(p, io);
      const jid = userJid(p.pos[0]!);
      const password = p.pos[1] ?? await readPassword(jid, { confirm: true });
      const r = await accountRequest(config, 'passwd', { jid, password, iterations: intFlag(p, 'iterations') }) as { jid: string };
      io.out(`password changed for ${r.jid}`);
      return 0;
    },
  },

  deluser: {
    usage: 'chorus deluser JID',
    summary: 'delete an account with its roster and offline messages',
    details: '',
    flags: {}, args: [1, 1],
    async run(p, io) {
      const config = await configFrom(p, io);
      const r = await accountRequest(config, 'deluser', { jid: userJid(p.pos[0]!) }) as { jid: string };
      io.out(`deleted ${r.jid}`);
      return 0;
    },
  },

  role: {
    usage: 'chorus role JID [admin|user]',
    summary: "show an account's role, or make it an admin or an ordinary user",
    details: [
      'An admin runs the server\'s admin commands from a client (XEP-0133) and makes account invitations.',
      'Admins are the config\'s `admins` and accounts given the role here or by `chorus invite --admin`;',
      'the config\'s admins stay admins whatever their stored role (change the config for them).',
    ].join('\n'),
    flags: {}, args: [1, 2],
    async run(p, io) {
      const config = await configFrom(p, io);
      const jid = userJid(p.pos[0]!, config.hosts);
      const to = p.pos[1];
      if (to !== undefined && to !== 'admin' && to !== 'user') throw new CliError(`unknown role ${JSON.stringify(to)}: admin or user`);
      const r = await accountRequest(config, 'role', { jid, ...(to === undefined ? {} : { admin: to === 'admin' }) }) as { jid: string; roles: string[] };
      const byConfig = config.admins.includes(r.jid);
      io.out(`${r.jid}: ${byConfig || r.roles.includes('admin') ? 'admin' : 'user'}${byConfig ? ' (in the config\'s admins)' : ''}`);
      return 0;
    },
  },

  users: {
    usage: 'chorus users [HOST]',
    summary: 'list accounts (of one host), one bare JID per line',
    details: '',
    flags: {}, args: [0, 1],
    async run(p, io) {
      const config = await configFrom(p, io);
      let host: string | undefined;
      if (p.pos[0] !== undefined) {
        const d = checkDomain(p.pos[0]);
        if (typeof d !== 'string') throw new CliError(`invalid host ${JSON.stringify(p.pos[0])}: ${d.problem}`);
        if (!config.hosts.includes(d)) throw new CliError(`${d} is not a host of this server (hosts: ${config.hosts.join(', ')})`);
        host = d;
      }
      const list = await accountRequest(config, 'users', host === undefined ? {} : { host }, { newDatabase: named(p) }) as string[];
      for (const jid of list) io.out(jid);
      return 0;
    },
  },

  invite: {
    usage: 'chorus invite HOST|USER@HOST [--admin] [--expires DAYS]',
    summary: 'make an account invitation (XEP-0401): an xmpp: link that lets one person register',
    details: [
      'With HOST the invited person chooses the username; with USER@HOST that name is reserved for them.',
      'Clients that know invitations (Conversations, Monal, Gajim, Dino, Siskin) register from the link even',
      'with in-band registration closed (the register module\'s allow_registration). The link works once.',
      '  --admin           the account it makes is one of the server\'s admins (its admin commands, XEP-0133),',
      '                    as those the config\'s admins names',
      '  --expires DAYS    how long it stays valid (default: the invites module\'s expiry_days, 7; 0: until used)',
    ].join('\n'),
    flags: { expires: true, admin: false }, args: [1, 1],
    async run(p, io) {
      const config = await configFrom(p, io);
      const target = p.pos[0]!;
      const at = target.lastIndexOf('@');
      const host = at < 0 ? target : target.slice(at + 1);
      const d = checkDomain(host);
      if (typeof d !== 'string') throw new CliError(`invalid host ${JSON.stringify(host)}: ${d.problem}`);
      if (!config.hosts.includes(d)) throw new CliError(`${d} is not a host of this server (hosts: ${config.hosts.join(', ')})`);
      const configured = (config.modules.options.invites as { expiry_days?: number } | undefined)?.expiry_days;
      const days = intFlag(p, 'expires') ?? configured ?? 7;
      const r = await accountRequest(config, 'invite', { host: d, days, admin: p.flags.has('admin'), ...(at < 0 ? {} : { username: target.slice(0, at) }) }) as { uri: string; expires: number | null; token: string };
      io.out(r.uri);
      const page = landingUrl({ http: config.listen.http, https: config.listen.https }, { host: d, token: r.token });
      if (page) io.err(`for someone without an XMPP app yet, send this page: ${page}`);
      io.err(`${r.expires === null ? 'valid until used' : `valid until ${new Date(r.expires).toISOString()}, once`}${p.flags.has('admin') ? '; the account it makes is an admin' : ''}`);
      return 0;
    },
  },

  'import-users': {
    usage: 'chorus import-users FILE [--iterations N] [--new-database]',
    summary: 'create accounts from lines of "JID PASSWORD" (FILE "-" = stdin)',
    details: [
      'The password is the rest of the line after the JID and its spaces. Blank lines and lines',
      'starting with # are skipped. Bad lines are reported by number; the good ones are imported.',
      'Exit code 1 when any line failed.',
      '  --iterations N    PBKDF2 iterations (default 4096)',
      NEW_DATABASE_HELP,
    ].join('\n'),
    flags: { iterations: true, 'new-database': false }, args: [1, 1],
    async run(p, io) {
      const config = await configFrom(p, io);
      const file = p.pos[0]!;
      let text: string;
      try {
        text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
      }
      const lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      const r = await accountRequest(config, 'import-users', { lines, iterations: intFlag(p, 'iterations') }, { newDatabase: named(p) }) as ImportResult;
      for (const f of r.failed) io.err(`${file === '-' ? 'stdin' : file}:${f.line}: ${f.error}`);
      io.out(`imported ${r.imported} account${r.imported === 1 ? '' : 's'}` + (r.failed.length ? `; ${r.failed.length} line${r.failed.length === 1 ? '' : 's'} failed` : ''));
      return r.failed.length ? 1 : 0;
    },
  },

  check: {
    usage: 'chorus check [--dns] [--config FILE]',
    summary: 'check the config, certificates, ports and data directory, with advice',
    details: [
      'Exit code 1 when something would stop the node from working; warnings alone exit 0.',
      'With the node running, each TLS port is graded. --dns checks what DNS tells clients and servers too:',
      'SRV records (or the domain\'s address with the default ports), their ports against listen, each target\'s',
      'address and whether it is this machine.',
    ].join('\n'),
    flags: { dns: false }, args: [0, 0],
    async run(p, io) {
      return runCheck(configPath(p), io, { dns: p.flags.has('dns') });
    },
  },

  modules: {
    usage: 'chorus modules [--markdown]',
    summary: 'the feature modules: the XEPs each implements, its disco features and options (from their declarations)',
    details: '',
    flags: { markdown: false }, args: [0, 0],
    async run(p, io) {
      const { availableModules } = await import('../xmpp/modules.ts');
      const defs = await availableModules();
      if (p.flags.has('markdown')) {
        io.out('| XEP | module | status | note |');
        io.out('|---|---|---|---|');
        for (const d of defs) for (const x of d.xeps ?? []) io.out(`| ${String(x.xep).padStart(4, '0')} | \`${d.name}\` | ${x.status ?? ''} | ${x.note ?? ''} |`);
        return 0;
      }
      for (const d of defs) {
        const xeps = (d.xeps ?? []).map((x) => `XEP-${String(x.xep).padStart(4, '0')}${x.status === 'partial' ? ' (partial)' : ''}`).join(', ');
        io.out(`${d.name}${xeps ? ` — ${xeps}` : ''}: ${d.description}`);
        for (const [k, o] of Object.entries(d.options ?? {})) io.out(`    modules.options.${d.name}.${k} = ${JSON.stringify(o.default)}  ${o.doc}`);
      }
      return 0;
    },
  },

  status: {
    usage: 'chorus status [--json]',
    summary: 'uptime, memory, schedulers and actors of the running node',
    details: '',
    flags: { json: false }, args: [0, 0],
    async run(p, io) {
      const r = await nodeRequest(p, 'status', {}, io) as Record<string, unknown>;
      show(io, p.flags.has('json') ? r : readableStatus(r), p.flags.has('json'));
      return 0;
    },
  },

  actors: {
    usage: 'chorus actors [--kind KIND] [--json]',
    summary: 'list live actors of the running node',
    details: '',
    flags: { kind: true, json: false }, args: [0, 0],
    async run(p, io) {
      const kind = p.flags.get('kind');
      show(io, await nodeRequest(p, 'actors', typeof kind === 'string' ? { kind } : {}, io), p.flags.has('json'));
      return 0;
    },
  },

  s2s: {
    usage: 'chorus s2s [--json]',
    summary: 'the links to other servers: state, stanzas waiting, how each peer proved itself',
    details: 'Outbound links of the running node (federation); an idle link closes and is not listed.',
    flags: { json: false }, args: [0, 0],
    async run(p, io) {
      show(io, await nodeRequest(p, 's2s', {}, io), p.flags.has('json'));
      return 0;
    },
  },

  cert: {
    usage: 'chorus cert import [DIR...]',
    summary: 'import certificates (e.g. Let\'s Encrypt\'s) for the hosts and their service domains',
    details: [
      'Looks in each DIR (default /etc/letsencrypt/live) and its subfolders for certificate and key pairs',
      '(fullchain.pem with privkey.pem, or NAME.crt/NAME.pem with NAME.key) and copies, for each host, service',
      'domain (conference., upload., proxy.) and component, the one that serves it with the latest expiry into',
      'data_dir/certs/imported/. A tls entry in the config still wins. A running node takes them at chorus reload;',
      'as a certbot deploy hook: chorus cert import && chorus reload',
    ].join('\n'),
    flags: {}, args: [1, 20],
    async run(p, io) {
      if (p.pos[0] !== 'import') throw new CliError(`unknown cert command ${JSON.stringify(p.pos[0])}: usage: chorus cert import [DIR...]`);
      const config = await configFrom(p, io);
      const { importCertificates, LETS_ENCRYPT_LIVE } = await import('./cert-import.ts');
      const dirs = p.pos.length > 1 ? p.pos.slice(1).map((d) => resolve(d)) : [LETS_ENCRYPT_LIVE];
      for (const d of dirs) if (!existsSync(d)) throw new CliError(`${d}: no such directory`);
      const r = await importCertificates(config, dirs);
      for (const i of r.imported) io.out(`imported ${i.domain} from ${i.from} (valid until ${i.notAfter})`);
      for (const m of r.missing) io.err(`no certificate for ${m} in ${dirs.join(', ')}${config.tls[m] ? ' (it has a tls entry in the config)' : ''}`);
      if (r.imported.length && await AdminClient.connect(dataPaths(config).adminSocket).then((c) => { c?.close(); return c !== null; })) io.err('the running node takes them at: chorus reload');
      return r.imported.length ? 0 : 1;
    },
  },

  export: {
    usage: 'chorus export FILE',
    summary: 'write every account with its SCRAM keys, roster, vCard, private XML, offline messages, PEP nodes and message archive as XEP-0227',
    details: [
      'The portable format other servers read (Prosody, ejabberd, Openfire). No password is written: the SCRAM',
      'keys let each user log in with theirs wherever the file is imported. FILE must not exist; it is made mode 600.',
      'Works while the node runs (through it) or not.',
    ].join('\n'),
    flags: {}, args: [1, 1],
    async run(p, io) {
      const config = await configFrom(p, io);
      const file = resolve(p.pos[0]!);
      if (existsSync(file)) throw new CliError(`${file} exists: an export goes into a new file`);
      const client = await AdminClient.connect(dataPaths(config).adminSocket);
      let r: { accounts: number };
      if (client) {
        try { r = await client.request('export', { file }, 0) as { accounts: number }; } finally { client.close(); }
      } else {
        const [{ exportServer }, { loadModules }] = await Promise.all([import('./migrate.ts'), import('../xmpp/modules.ts')]);
        r = await withDatabase(config, async (db) => exportServer(db, config.hosts, await loadModules(config.hosts, config.modules, config.admins), file));
      }
      io.out(`exported ${r.accounts} accounts to ${file}`);
      return 0;
    },
  },

  import: {
    usage: 'chorus import FILE...',
    summary: 'create the accounts of a XEP-0227 file (ours, Prosody\'s, ejabberd\'s export_piefxis) with their data; the node must be stopped',
    details: [
      'Each account of a host this server serves is created with its SCRAM keys (or from its password, if the file',
      'has one) and gets its roster, vCard, private XML (bookmarks become Bookmarks 2), offline messages and PEP',
      'nodes. An account that exists here is left as it is. ejabberd: ejabberdctl export_piefxis DIR, then import',
      'the main file of DIR (its host files are read through it). Prosody: prosody-migrator with an output of type',
      '"xep0227" writes one file per account into its data_path; import them all (chorus import /var/lib/prosody/*@*.xml).',
    ].join('\n'),
    flags: {}, args: [1, Infinity],
    async run(p, io) {
      const config = await configFrom(p, io);
      const files = p.pos.map((f) => resolve(f));
      for (const file of files) if (!existsSync(file)) throw new CliError(`${file}: no such file`);
      const client = await AdminClient.connect(dataPaths(config).adminSocket);
      if (client) { client.close(); throw new CliError(`a node is running on ${config.data_dir}: stop it first (its actors keep state the import would write under)`); }
      const [{ importServer }, { loadModules }] = await Promise.all([import('./migrate.ts'), import('../xmpp/modules.ts')]);
      const r = await withDatabase(config, async (db) => {
        const modules = await loadModules(config.hosts, config.modules, config.admins);
        const all: Awaited<ReturnType<typeof importServer>> = { imported: [], skipped: [], notes: [] };
        for (const file of files) {
          const one = await importServer(db, config.hosts, modules, file).catch((e: Error) => { throw new CliError(files.length > 1 ? `${file}: ${e.message}` : e.message); });
          all.imported.push(...one.imported); all.skipped.push(...one.skipped); all.notes.push(...one.notes);
        }
        return all;
      }, true);
      for (const s of r.skipped) io.err(`skipped ${s.jid}: ${s.why}`);
      for (const n of r.notes) io.err(n);
      io.out(`imported ${r.imported.length} accounts${r.skipped.length ? `, skipped ${r.skipped.length}` : ''}`);
      return r.imported.length || !r.skipped.length ? 0 : 1;
    },
  },

  backup: {
    usage: 'chorus backup DIR',
    summary: 'copy the database and the node\'s secret into DIR (a new directory), while the node runs or not',
    details: [
      'The copy is consistent: one LevelDB snapshot (a running node goes on meanwhile). DIR gets db/, secret',
      'and backup.json. Shared files (data_dir/upload/) are plain files: copy them with rsync or tar.',
      'Put it back with chorus restore DIR.',
    ].join('\n'),
    flags: {}, args: [1, 1],
    async run(p, io) {
      const config = await configFrom(p, io);
      const dir = resolve(p.pos[0]!);
      const r = await backupRequest(config, dir) as { entries: number; bytes: number };
      io.out(`backed up ${r.entries} entries (${(r.bytes / 1_048_576).toFixed(1)} MB) to ${dir}`);
      return 0;
    },
  },

  restore: {
    usage: 'chorus restore DIR',
    summary: 'put a backup (chorus backup DIR) in place of the database and secret; the node must be stopped',
    details: 'What was there is kept beside it (db.before-restore-<time>, secret.before-restore-<time>).',
    flags: {}, args: [1, 1],
    async run(p, io) {
      const config = await configFrom(p, io);
      const dir = resolve(p.pos[0]!);
      const client = await AdminClient.connect(dataPaths(config).adminSocket);
      if (client) { client.close(); throw new CliError(`a node is running on ${config.data_dir}: stop it first (restore replaces its database)`); }
      const { readBackup, restoreDb } = await import('../storage/backup.ts');
      await readBackup(dir).catch((e: Error) => { throw new CliError(e.message); });
      // Refused while anything holds the database (a node starting or stopping).
      if (existsSync(dataPaths(config).db)) await withDatabase(config, async () => undefined);
      const r = await restoreDb(config.data_dir, dir);
      io.out(`restored ${r.entries} entries from ${dir} (backed up ${r.created})`);
      for (const k of r.kept) io.err(`what was there is kept at ${k}`);
      return 0;
    },
  },

  kill: {
    usage: 'chorus kill ADDRESS [--reason TEXT]',
    summary: 'crash one actor (its supervisor decides what happens next)',
    details: 'ADDRESS as shown by chorus actors, e.g. session:juliet@example.com/balcony',
    flags: { reason: true }, args: [1, 1],
    async run(p, io) {
      const reason = p.flags.get('reason');
      await nodeRequest(p, 'kill', { address: p.pos[0], ...(typeof reason === 'string' ? { reason } : {}) }, io);
      io.out(`killed ${p.pos[0]}`);
      return 0;
    },
  },

  reload: {
    usage: 'chorus reload [KIND | MODULE] [--json]',
    summary: 'hot-reload actor kinds (all, or one), or one feature module, in the running node',
    details: '',
    flags: { json: false }, args: [0, 1],
    async run(p, io) {
      const r = await nodeRequest(p, 'reload', p.pos[0] === undefined ? {} : { kind: p.pos[0] }, io) as { certificates?: TlsReloadResult };
      show(io, r, p.flags.has('json'));
      // A certbot deploy hook runs this: a certificate that was not installed must fail it.
      const failed = r.certificates?.failed ?? [];
      for (const f of failed) io.err(`chorus: tls.${f.host}: not reloaded: ${f.error}`);
      for (const w of r.certificates?.warnings ?? []) io.err(`chorus: warning: tls.${w.host}: ${w.warning}`);
      return failed.length ? 1 : 0;
    },
  },

  load: moduleCommand('load', 'load a feature module that is not loaded into the running node',
    'MODULE as listed by chorus modules (or in a modules.paths folder); what it depends on must be loaded'),
  unload: moduleCommand('unload', 'unload a feature module from the running node (its hooks, features and disco entries go)',
    'refused while a loaded module depends on it; the config decides what loads at the next start'),

  bench: {
    usage: 'chorus bench <scenario> [options]',
    summary: 'load-test a server (see chorus bench --help)',
    details: '',
    flags: {}, args: [0, Infinity],
    run: async () => 0, // dispatched before parsing: bench owns its arguments
  },
};

/** `chorus load|unload MODULE`: one module, on the running node. */
function moduleCommand(verb: 'load' | 'unload', summary: string, details: string): Command {
  return {
    usage: `chorus ${verb} MODULE`, summary, details, flags: {}, args: [1, 1],
    async run(p, io) {
      await nodeRequest(p, verb, { module: p.pos[0] }, io);
      io.out(`${verb}ed ${p.pos[0]}`);
      return 0;
    },
  };
}

/**
 * A command a feature module offers the operator (its `operatorCommands`: chorus rooms): the CLI
 * asks the actor the module names, on the running node, and shows the answer.
 */
async function moduleOperatorCommand(name: string, argv: readonly string[]): Promise<Command | undefined> {
  const spec = (await operatorCommands(argv)).find((c) => c.name === name);
  if (!spec) return undefined;
  return {
    usage: `${spec.usage} [--json]`, summary: spec.summary, details: '', flags: { json: false }, args: spec.args,
    async run(p, io) {
      const config = await configFrom(p);
      const { loadModules } = await import('../xmpp/modules.ts');
      const modules = await loadModules(config.hosts, config.modules, config.admins);
      const target = spec.ask(p.pos, { hosts: config.hosts, services: (host) => modules.servicesOf(host) });
      if (typeof target === 'string') throw new CliError(`${target}: usage: ${spec.usage}`);
      const answer = await nodeRequest(p, 'ask', target, io) as { ok: boolean; result?: unknown; error?: string };
      if (!answer.ok) throw new CliError(answer.error ?? 'no answer');
      show(io, answer.result, p.flags.has('json'));
      return 0;
    },
  };
}

/** What the modules offer the operator: the built-in ones and those of the config's modules.paths
 *  (the config found as for any command, `--config` anywhere in `argv`; none readable: the built-ins). */
async function operatorCommands(argv: readonly string[]): Promise<OperatorCommand[]> {
  const { availableModules } = await import('../xmpp/modules.ts');
  const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  const file = i < 0 ? undefined : argv[i]!.startsWith('--config=') ? argv[i]!.slice('--config='.length) : argv[i + 1];
  const flags = new Map<string, string | true>(file !== undefined ? [['config', file]] : []);
  let paths: string[] = [];
  try { paths = (await loadConfig(configPath({ pos: [], flags }))).modules.paths ?? []; } catch { /* the built-ins */ }
  return (await availableModules(paths)).flatMap((d) => d.operatorCommands ?? []);
}

async function topHelp(argv: readonly string[]): Promise<string> {
  const fromModules = (await operatorCommands(argv)).map((c) => [c.name, c.summary] as const);
  const all = [...Object.entries(COMMANDS).map(([name, c]) => [name, c.summary] as const), ...fromModules];
  const width = Math.max(...all.map(([c]) => c.length));
  return [
    'usage: chorus <command> [options]   (chorus <command> --help for details)',
    '',
    ...all.map(([name, summary]) => `  ${name.padEnd(width)}  ${summary}`),
    '',
    'Account commands work with or without a running node: they go through its admin socket',
    '(<data_dir>/admin.sock) when it answers, else straight to the database.',
    '',
    CONFIG_HELP,
  ].join('\n');
}

function commandHelp(name: string, c: Command): string {
  return [`usage: ${c.usage}`, '', `${name}: ${c.summary}`, ...(c.details ? ['', c.details] : []), '', CONFIG_HELP].join('\n');
}

function parse(name: string, c: Command, argv: string[]): Parsed | 'help' {
  const pos: string[] = [];
  const flags = new Map<string, string | true>();
  const known: Record<string, boolean> = { ...c.flags, config: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { pos.push(...argv.slice(i + 1)); break; }
    if (a === '-h' || a === '--help') return 'help';
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = a.slice(2, eq < 0 ? undefined : eq);
      if (!(key in known)) throw new CliError(`unknown option --${key} for "chorus ${name}" (see chorus ${name} --help)`);
      if (known[key]) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined || v === '') throw new CliError(`--${key} needs a value (see chorus ${name} --help)`);
        flags.set(key, v);
      } else {
        if (eq >= 0) throw new CliError(`--${key} takes no value`);
        flags.set(key, true);
      }
    } else if (a.startsWith('-') && a !== '-') {
      throw new CliError(`unknown option ${a} for "chorus ${name}" (see chorus ${name} --help)`);
    } else pos.push(a);
  }
  const [min, max] = c.args;
  if (pos.length < min) throw new CliError(`missing argument: usage: ${c.usage}`);
  if (pos.length > max) throw new CliError(`unexpected argument ${JSON.stringify(pos[max])}: usage: ${c.usage}`);
  return { pos, flags };
}

/** As a service finds it: --config, $CHORUS_CONFIG, /etc/chorus/chorus.yaml, ./chorus.yaml; none:
 *  the built-in defaults (data in ./data). */
function configPath(p: Parsed): string | undefined {
  const flag = p.flags.get('config');
  if (typeof flag === 'string') return resolve(flag);
  if (process.env.CHORUS_CONFIG) return resolve(process.env.CHORUS_CONFIG);
  for (const f of [SYSTEM_CONFIG, 'chorus.yaml']) if (existsSync(f)) return resolve(f);
  return undefined;
}

const SYSTEM_CONFIG = '/etc/chorus/chorus.yaml';

/** The config a command runs with; which file and data_dir is said on stderr, so a command run from
 *  the wrong directory cannot quietly work on another database. */
async function configFrom(p: Parsed, io?: Io): Promise<ChorusConfig> {
  const config = await loadConfig(configPath(p));
  if (!p.flags.has('config')) io?.err(`chorus: config ${config.source ?? 'none found (built-in defaults)'}; data_dir ${config.data_dir}`);
  return config;
}

/** The operator said which database: --config (an explicit config is their word) or --new-database. */
const named = (p: Parsed): boolean => p.flags.has('new-database') || p.flags.has('config');

function intFlag(p: Parsed, key: string): number | undefined {
  const v = p.flags.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new CliError(`--${key} expects a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

function userJid(input: string, hosts?: readonly string[]): string {
  try {
    return accountJid(input, hosts);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/** A backup by the running node (its database is locked to it), else straight from the database. */
async function backupRequest(config: ChorusConfig, dir: string): Promise<unknown> {
  const client = await AdminClient.connect(dataPaths(config).adminSocket);
  if (client) {
    try { return await client.request('backup', { dir }, 0); } finally { client.close(); }
  }
  const { backupDb } = await import('../storage/backup.ts');
  return withDatabase(config, (db) => backupDb(db, config.data_dir, dir));
}

/** Runs `fn` on the data_dir's database, opened here (no node holds it); `create`: make it if absent. */
async function withDatabase<T>(config: ChorusConfig, fn: (db: AnyDb) => Promise<T>, create = false): Promise<T> {
  if (!create && !existsSync(dataPaths(config).db)) throw new CliError(`no database at ${dataPaths(config).db}`);
  const { openDb, isLockedError } = await import('../storage/db.ts');
  const db = await openDb(config.data_dir).catch((e: unknown) => {
    throw new CliError(isLockedError(e) ? `the database ${dataPaths(config).db} is locked by another process, but nothing answers on its admin socket; is a node starting or stopping? Try again in a moment` : `cannot open ${dataPaths(config).db}: ${(e as Error).message}`);
  });
  try { return await fn(db); } finally { await db.close(); }
}

async function nodeRequest(p: Parsed, cmd: string, args: Record<string, unknown>, io?: Io): Promise<unknown> {
  const config = await configFrom(p);
  const sock = dataPaths(config).adminSocket;
  const client = await AdminClient.connect(sock) ?? await theRunningNode(p, cmd, sock, io);
  if (!client) {
    throw new CliError(`"${cmd}" needs a running node, and none answers on ${sock} (start it with: chorus start${p.flags.has('config') ? ' --config ' + p.flags.get('config') : ''})`);
  }
  try {
    return await client.request(cmd, args);
  } finally {
    client.close();
  }
}

/**
 * Run from another folder with no --config, a command still reaches the node that runs on this
 * machine (its config as it started with it), saying so; of several, the operator must say which.
 */
async function theRunningNode(p: Parsed, cmd: string, tried: string, io?: Io): Promise<AdminClient | null> {
  if (p.flags.has('config')) return null;
  const nodes = runningNodes();
  if (nodes.length > 1) {
    throw new CliError(`nothing answers on ${tried}, and ${nodes.length} nodes run on this machine (${nodes.map((n) => `pid ${n.pid} in ${n.cwd}${n.config ? ` with ${n.config}` : ''}`).join('; ')}): ` +
      `say which with --config FILE`);
  }
  const node = nodes[0];
  if (!node) return null;
  const sock = node.config ? dataPaths(await loadConfig(node.config)).adminSocket : join(node.cwd, 'data', 'admin.sock');
  const client = await AdminClient.connect(sock);
  if (client) io?.err(`chorus: nothing answers on ${tried}; "${cmd}" goes to the node running in ${node.cwd} (pid ${node.pid}${node.config ? `, ${node.config}` : ''})`);
  return client;
}

/** status for people: uptime and sizes in units, not raw seconds and bytes (--json keeps those). */
function readableStatus(r: Record<string, unknown>): Record<string, unknown> {
  const mb = (bytes: unknown) => `${(Number(bytes) / 1_048_576).toFixed(1)} MB`;
  const duration = (seconds: unknown) => {
    const s = Math.max(0, Math.round(Number(seconds)));
    return [[Math.floor(s / 86_400), 'd'], [Math.floor(s / 3600) % 24, 'h'], [Math.floor(s / 60) % 60, 'm'], [s % 60, 's']]
      .filter(([n], i, all) => n !== 0 || i === all.length - 1).map(([n, u]) => `${n}${u}`).join(' ');
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k === 'uptimeSeconds') out.uptime = duration(v);
    else if (k === 'rssBytes') out.memory = mb(v);
    else if (k === 'mainThread' && v && typeof v === 'object') out.mainThread = Object.fromEntries(Object.entries(v).map(([n, b]) => [n === 'heapUsed' ? 'heap' : n, mb(b)]));
    else if (k === 'schedulers' && Array.isArray(v)) out.schedulers = v.map(({ heapUsed, ...x }) => (heapUsed === undefined ? x : { ...x, heap: mb(heapUsed) }));
    else out[k] = v;
  }
  return out;
}

/** Human output: a table for lists of flat records, YAML for anything else; --json for scripts. */
function show(io: Io, value: unknown, json: boolean): void {
  if (json) return io.out(JSON.stringify(value, null, 2));
  const flat = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x !== 'object');
  if (Array.isArray(value) && value.length && value.every(flat)) {
    const cols = [...new Set(value.flatMap((r) => Object.keys(r)))];
    const cell = (v: unknown) => (v === undefined || v === null ? '' : String(v));
    const widths = cols.map((c) => Math.max(c.length, ...value.map((r) => cell(r[c]).length)));
    const row = (cells: string[]) => cells.map((s, i) => s.padEnd(widths[i]!)).join('  ').trimEnd();
    io.out(row(cols));
    for (const r of value) io.out(row(cols.map((c) => cell(r[c]))));
    return;
  }
  if (Array.isArray(value) && value.length === 0) return io.out('(none)');
  io.out(toYaml(value).trimEnd());
}

function readStdin(): Promise<string> {
  return new Promise((res, rej) => {
    let s = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (s += d));
    process.stdin.once('end', () => res(s));
    process.stdin.once('error', rej);
  });
}

const stdio: Io = {
  out: (line) => void process.stdout.write(line + '\n'),
  err: (line) => void process.stderr.write(line + '\n'),
};

/** Run the CLI; returns the exit code and also sets process.exitCode. */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const code = await dispatch(argv, io);
  process.exitCode = code;
  return code;
}

async function dispatch(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help') {
    io.out(await topHelp(argv));
    return name === undefined ? 1 : 0;
  }
  if (name === 'help') {
    const c = rest[0] === undefined ? undefined : Object.hasOwn(COMMANDS, rest[0]) ? COMMANDS[rest[0]] : await moduleOperatorCommand(rest[0], argv);
    if (c && rest[0] === 'bench') return dispatch(['bench', '--help'], io);
    io.out(c ? commandHelp(rest[0]!, c) : await topHelp(argv));
    return 0;
  }
  if (name === '--version' || name === '-v') {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    io.out(`chorus ${pkg.version}`);
    return 0;
  }
  try {
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : await moduleOperatorCommand(name, argv);
    if (!command) throw new CliError(`unknown command ${JSON.stringify(name)} (see chorus --help)`);
    if (name === 'bench') {
      const { benchCommand } = await import('../../bench/lib/cli.ts');
      return await benchCommand(rest);
    }
    usePrivateUmask(); // whatever a command creates in data_dir (a DB opened offline too) is owner-only
    const parsed = parse(name, command, rest);
    if (parsed === 'help') {
      io.out(commandHelp(name, command));
      return 0;
    }
    return await command.run(parsed, io);
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const line of e.message.split('\n')) io.err(`chorus: ${line}`);
      return 1;
    }
    if (e instanceof CliError || e instanceof AccountError || e instanceof DataDirError) {
      io.err(`chorus: ${e.message}`);
      return 1;
    }
    const root = rootCause(e);
    if (root instanceof OperatorError) {
      io.err(`chorus: ${root.message}`);
      if (root.fix) io.err(`chorus: fix: ${root.fix}`);
      return 1;
    }
    // A bug, not a mistake of the operator's: the stack is for a bug report (CHORUS_DEBUG=1).
    if (process.env.CHORUS_DEBUG) io.err(`chorus: internal error in "${name}": ${(e as Error)?.stack ?? e}`);
    else io.err(`chorus: internal error in "${name}": ${(e as Error)?.message ?? e} (CHORUS_DEBUG=1 shows the stack)`);
    return 1;
  }
}
