// `chorus check`: everything that would make `chorus start` fail or a client complain, found before
// starting — config, certificates, ports, the data directory and its permissions — each with advice
// on fixing it; with the node running, the TLS grade of each of its TLS ports.
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { createServer } from 'node:net';
import { availableParallelism, networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { dataPaths } from '../config/defaults.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { LISTENER_NAMES, type ChorusConfig, type ListenerName } from '../config/types.ts';
import { gradeEndpoint, type Endpoint } from './tls-grade.ts';
import { importedDir, inspectCertificate } from '../net/tls.ts';
import { isLockedError, openDb } from '../storage/db.ts';
import { modeString, openEntries } from '../storage/private-files.ts';
import { AdminClient } from './admin-client.ts';
import { portHolder } from './processes.ts';

interface Io { out(line: string): void }
type Level = 'ok' | 'warn' | 'FAIL';

class Report {
  fails = 0;
  warns = 0;
  constructor(private io: Io) {}
  line(level: Level, text: string, advice?: string): void {
    if (level === 'FAIL') this.fails++;
    if (level === 'warn') this.warns++;
    this.io.out(`${level.padEnd(4)}  ${text}`);
    if (advice) this.io.out(`      → ${advice}`);
  }
}

/** `dns`: check what DNS says too (`chorus check --dns`, as `prosodyctl check dns`), asking
 *  `dnsServers` (ip:port) instead of the system's resolver when given (tests). */
export async function runCheck(configFile: string | undefined, io: Io, o: { dns?: boolean; dnsServers?: string[] } = {}): Promise<number> {
  const r = new Report(io);
  let config: ChorusConfig;
  try {
    config = await loadConfig(configFile);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) r.line('FAIL', `config: ${p}`);
    io.out(`\ncheck: the config has ${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}; fix ${e.problems.length === 1 ? 'it' : 'them'} first`);
    return 1;
  }
  r.line('ok', configFile ? `config ${configFile}` : 'config: none given, using built-in defaults',
    configFile ? undefined : 'copy chorus.example.yaml to chorus.yaml and set your hosts');

  const paths = dataPaths(config);
  const client = await AdminClient.connect(paths.adminSocket).catch(() => null);
  const running = client !== null;
  client?.close();
  const held = !running && await heldElsewhere(config);
  if (running) r.line('ok', `node: running (admin socket ${paths.adminSocket} answers)`);
  else if (held) {
    // As start would find it: LevelDB's lock taken, and no admin socket of ours answering.
    r.line('FAIL', `node: not answering on ${paths.adminSocket}, but another process holds the database ${paths.db}: chorus start would refuse`,
      'is a node starting, stopping, or running as another user or with another config on this data_dir? Stop it, or give this config a data_dir of its own');
  } else r.line('ok', 'node: not running');

  await checkCertificates(config, r);
  if (o.dns) await checkDns(config, r, o.dnsServers);
  const nodePorts = await checkPorts(config, running, r);
  await checkTlsGrades(config, nodePorts, r);
  await checkDataDir(config, running || held, r);
  advise(config, r);

  io.out(`\ncheck: ${r.fails} problem${r.fails === 1 ? '' : 's'}, ${r.warns} warning${r.warns === 1 ? '' : 's'}`);
  return r.fails ? 1 : 0;
}

async function checkCertificates(config: ChorusConfig, r: Report): Promise<void> {
  const names = [...new Set([...config.hosts, ...Object.keys(config.tls)])];
  for (const host of names) {
    // As the node picks: the config's tls entry, else one chorus cert import put in place.
    const importedCert = join(importedDir(dataPaths(config).certs), `${host}.crt`);
    const entry = config.tls[host] ?? (existsSync(importedCert) ? { cert: importedCert, key: importedCert.replace(/\.crt$/, '.key') } : undefined);
    let files = entry;
    if (!files) {
      const cert = join(dataPaths(config).certs, `${host}.crt`);
      if (!existsSync(cert)) {
        r.line('warn', `tls ${host}: no certificate configured; a self-signed one will be generated at first start`,
          `for clients to trust it, get one (e.g. certbot certonly -d ${host}) and run chorus cert import (or set tls.${host}.cert/.key)`);
        continue;
      }
      files = { cert, key: join(dataPaths(config).certs, `${host}.key`) };
    }
    const rep = await inspectCertificate(host, files.cert, files.key);
    const what = config.tls[host] ? `tls ${host}` : entry ? `tls ${host} (imported)` : `tls ${host} (generated self-signed)`;
    for (const p of rep.problems) r.line('FAIL', `${what}: ${p}`, certAdvice(p, host));
    for (const w of rep.warnings) {
      if (entry || !/self-signed/.test(w)) r.line('warn', `${what}: ${w}`);
    }
    if (!rep.problems.length) {
      r.line('ok', `${what}: ${files.cert}, expires ${rep.notAfter?.toISOString().slice(0, 10)}, names ${rep.names.join(', ')}`,
        entry ? undefined : `clients will warn; set tls.${host}.cert/.key to a CA-issued certificate`);
    }
  }
}

function certAdvice(problem: string, host: string): string | undefined {
  if (/permission denied/.test(problem)) return "Let's Encrypt keys are root-only: copy them in a certbot deploy hook, or grant the server's group read access";
  if (/not the private key/.test(problem)) return 'cert and key come from different issuances; use fullchain.pem and privkey.pem from the same live/ directory';
  if (/^expired/.test(problem)) return 'renew it (certbot renew) and run chorus reload, or delete a generated one to get a fresh one';
  if (/does not cover/.test(problem)) return `request a certificate that includes ${host} (certbot -d ${host})`;
  return undefined;
}

function tryListen(port: number, host: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

/**
 * What DNS tells clients and other servers (RFC 6120 §3.2, XEP-0368): SRV records, or the domain's
 * own address with the default ports; every target must have an address, and where the addresses
 * are this machine's, that is said (behind NAT they are not, and that may be right).
 */
async function checkDns(config: ChorusConfig, r: Report, servers?: string[]): Promise<void> {
  const resolver = new Resolver({ timeout: 3000, tries: 2 });
  if (servers) resolver.setServers(servers);
  const local = new Set(Object.values(networkInterfaces()).flat().map((i) => i!.address));
  const srv = async (name: string) => resolver.resolveSrv(name).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOTFOUND' || e.code === 'ENODATA' ? [] : e));
  const addresses = async (name: string): Promise<string[] | Error> => {
    const all = await Promise.all([resolver.resolve4(name), resolver.resolve6(name)].map((p) => p.catch((e: NodeJS.ErrnoException) => (e.code === 'ENOTFOUND' || e.code === 'ENODATA' ? [] : e))));
    const err = all.find((x): x is Error => x instanceof Error);
    return err && all.every((x) => x instanceof Error || !x.length) ? err : all.flatMap((x) => (x instanceof Error ? [] : x));
  };
  const where = (ips: string[]) => (ips.some((ip) => local.has(ip)) ? 'this machine' : 'not this machine (fine behind NAT or a proxy)');
  const kinds: Array<[label: string, plain: string, tls: string, port: number | false, tlsPort: number | false, fallback: number]> = [
    ['clients', '_xmpp-client._tcp', '_xmpps-client._tcp', config.listen.c2s, config.listen.c2s_direct_tls, 5222],
    ['servers', '_xmpp-server._tcp', '_xmpps-server._tcp', config.listen.s2s, config.listen.s2s === false ? false : config.listen.s2s_direct_tls, 5269],
  ];
  for (const host of config.hosts) {
    for (const [label, plain, tls, port, tlsPort, fallback] of kinds) {
      if (port === false) continue;
      const [starttls, direct] = [await srv(`${plain}.${host}`), await srv(`${tls}.${host}`)];
      if (starttls instanceof Error || direct instanceof Error) {
        r.line('warn', `dns ${host}: could not ask for ${label}' SRV records: ${(starttls instanceof Error ? starttls : direct as Error).message}`, 'check the resolver of this machine, or run chorus check --dns where DNS answers');
        continue;
      }
      const records = [...starttls.map((x) => ({ ...x, tls: false })), ...direct.map((x) => ({ ...x, tls: true }))];
      if (!records.length) {
        const ips = await addresses(host);
        if (ips instanceof Error) r.line('warn', `dns ${host}: could not look it up: ${ips.message}`);
        else if (!ips.length) r.line('FAIL', `dns ${host}: no SRV record for ${label} and no address: they cannot find this server`, `add an A/AAAA record for ${host}, or SRV records ${plain}.${host} pointing at this machine`);
        else if (port !== fallback) r.line('warn', `dns ${host}: no SRV record for ${label}, so they connect to ${host}:${fallback}, but listen.${label === 'clients' ? 'c2s' : 's2s'} is ${port}`, `add SRV records: ${plain}.${host} 0 5 ${port} ${host}.`);
        else r.line('ok', `dns ${host}: no SRV record for ${label}; they use ${host}:${fallback} (${ips.join(', ')}: ${where(ips)})`);
        continue;
      }
      for (const rec of records) {
        const want = rec.tls ? tlsPort : port;
        const ips = await addresses(rec.name);
        const name = `${rec.tls ? tls : plain}.${host} → ${rec.name}:${rec.port}`;
        if (ips instanceof Error) r.line('warn', `dns ${name}: could not look up ${rec.name}: ${ips.message}`);
        else if (!ips.length) r.line('FAIL', `dns ${name}: ${rec.name} has no address`, `add an A/AAAA record for ${rec.name}`);
        else if (want === false || rec.port !== want) r.line('warn', `dns ${name}: this node ${want === false ? 'does not listen for it' : `listens on ${want}`}`, `make the record's port and listen.${rec.tls ? (label === 'clients' ? 'c2s_direct_tls' : 's2s_direct_tls') : (label === 'clients' ? 'c2s' : 's2s')} agree`);
        else r.line('ok', `dns ${name} (${ips.join(', ')}: ${where(ips)})`);
      }
    }
  }
}

/** Checks each listener's port; returns those the running node holds. */
async function checkPorts(config: ChorusConfig, running: boolean, r: Report): Promise<Set<ListenerName>> {
  const addr = config.listen.address;
  const held = new Set<ListenerName>();
  for (const name of LISTENER_NAMES) {
    const port = config.listen[name];
    if (port === false) continue;
    const at = `listen.${name} ${addr.includes(':') ? `[${addr}]` : addr}:${port}`;
    if (name === 'component' && Object.keys(config.components).length === 0) { r.line('ok', `${at}: not opened (no components configured)`); continue; }
    // Components connect on loopback only (XEP-0114's handshake is a hash over plain TCP).
    const err = await tryListen(port, name === 'component' ? '127.0.0.1' : addr);
    if (err === null) r.line('ok', `${at}: free`);
    else if (err === 'EADDRINUSE') {
      const holder = portHolder(port);
      if (holder && running && holder.node) { r.line('ok', `${at}: in use by the running node (pid ${holder.pid})`); held.add(name); }
      else if (holder) r.line('FAIL', `${at}: in use by ${holder.command} (pid ${holder.pid})`, `stop it, or choose another port in listen.${name}`);
      else r.line('FAIL', `${at}: in use, by a process this user cannot see`, `find it with: sudo ss -ltnp 'sport = :${port}' — or choose another port in listen.${name}`);
    } else if (err === 'EACCES') {
      r.line('FAIL', `${at}: not allowed to bind ports below 1024`, 'use a port ≥ 1024, or grant the capability: setcap cap_net_bind_service=+ep $(command -v node)');
    } else if (err === 'EADDRNOTAVAIL') {
      r.line('FAIL', `${at}: ${addr} is not an address of this machine`, 'set listen.address to "::", "0.0.0.0" or one of this machine\'s addresses');
    } else if (err === 'EAFNOSUPPORT') {
      r.line('FAIL', `${at}: IPv6 is not available here`, 'set listen.address to "0.0.0.0"');
    } else r.line('FAIL', `${at}: cannot listen: ${err}`);
  }
  return held;
}

/** The running node's TLS ports graded as xmpp.net graded them (src/cli/tls-grade.ts), per host;
 *  only ports the node holds (another program's port is not ours to probe). */
async function checkTlsGrades(config: ChorusConfig, nodePorts: Set<ListenerName>, r: Report): Promise<void> {
  const addr = config.listen.address;
  const address = addr === '::' || addr === '0.0.0.0' ? '127.0.0.1' : addr;
  const ports: Array<[ListenerName, Endpoint['tls'], Endpoint['stream']]> = [
    ['c2s', 'starttls', 'c2s'], ['c2s_direct_tls', 'direct', 'c2s'], ['s2s', 'starttls', 's2s'], ['s2s_direct_tls', 'direct', 's2s'],
  ];
  for (const domain of config.hosts) {
    for (const [name, tls, stream] of ports) {
      const port = config.listen[name];
      if (port === false || !nodePorts.has(name)) continue;
      const g = await gradeEndpoint({ domain, address, port, tls, stream, ca: config.s2s.ca_file ? [readFileSync(config.s2s.ca_file, 'utf8')] : undefined });
      const how = g.negotiated ? ` (${g.negotiated.protocol}, ${g.negotiated.cipher})` : '';
      const short = g.findings.filter((f) => !f.ok);
      if (g.grade === 'A') r.line('ok', `tls ${domain} on listen.${name} ${port}: grade A${how}`);
      else {
        r.line(g.grade === 'T' ? 'warn' : 'FAIL', `tls ${domain} on listen.${name} ${port}: grade ${g.grade}${how}: ${short.map((f) => f.what).join('; ')}`,
          g.grade === 'T' ? `clients and servers will not trust it: get a certificate for ${domain} from a CA (certbot certonly -d ${domain}) and set tls.${domain}` : 'the TLS settings of this listener are weaker than Chorus sets them: report it');
      }
    }
  }
}

async function checkDataDir(config: ChorusConfig, inUse: boolean, r: Report): Promise<void> {
  const dir = config.data_dir;
  if (!existsSync(dir)) {
    let parent = dirname(dir);
    while (!existsSync(parent) && dirname(parent) !== parent) parent = dirname(parent);
    if (writable(parent)) r.line('ok', `data_dir ${dir}: does not exist yet; will be created (mode 700)`);
    else r.line('FAIL', `data_dir ${dir}: does not exist and ${parent} is not writable`, `create it as the server's user: mkdir -m 700 ${dir}`);
    return;
  }
  const st = statSync(dir);
  if (!st.isDirectory()) {
    r.line('FAIL', `data_dir ${dir}: not a directory`);
    return;
  }
  if (!writable(dir)) {
    r.line('FAIL', `data_dir ${dir}: not writable by uid ${process.getuid?.() ?? '?'}`, `chown the directory to the server's user, or run chorus as its owner (uid ${st.uid})`);
    return;
  }
  const mode = modeString(st.mode);
  if (st.mode & 0o077) {
    const uid = process.getuid?.();
    if (uid === st.uid || uid === 0) {
      r.line('warn', `data_dir ${dir}: too open (mode ${mode}): other users can read password verifiers, keys and offline messages; chorus start will change it to 700`, `chmod 700 ${dir}`);
    } else {
      r.line('FAIL', `data_dir ${dir}: too open (mode ${mode}) and owned by uid ${st.uid}, not this user: chorus start will refuse it`, `run chorus as uid ${st.uid}, or make it this user's: sudo chown -R $(id -un) ${dir} && chmod 700 ${dir}`);
    }
  } else r.line('ok', `data_dir ${dir}: writable, private (mode ${mode})`);
  const open = openEntries(dir);
  if (open.total) {
    const names = open.entries.map((e) => `${e.path} (${e.mode})`).join(', ') + (open.total > open.entries.length ? `, and ${open.total - open.entries.length} more` : '');
    r.line('warn', `data_dir ${dir}: ${open.total} ${open.total === 1 ? 'entry' : 'entries'} under it open to other users: ${names}`, `chmod -R go-rwx ${dir}`);
  } else r.line('ok', `data_dir ${dir}: everything under it is private`);

  // sockaddr_un holds 108 bytes on Linux (104 on macOS) including the terminating NUL.
  const sock = dataPaths(config).adminSocket;
  if (Buffer.byteLength(sock) > 103) {
    r.line('FAIL', `admin socket path ${sock} is ${Buffer.byteLength(sock)} bytes; unix sockets allow about 103`, 'choose a shorter data_dir');
  }

  const db = dataPaths(config).db;
  if (inUse || !existsSync(db)) return; // in use: a node has it open (the node line says which way)
  try {
    const handle = await openDb(dir);
    await handle.close();
    r.line('ok', `database ${db}: opens`);
  } catch (e) {
    r.line('FAIL', `database ${db}: cannot open: ${(e as Error).message}`, (e as { cause?: Error }).cause?.message);
  }
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function advise(config: ChorusConfig, r: Report): void {
  if (!config.c2s_require_encryption) {
    r.line('warn', 'c2s_require_encryption is false: clients may authenticate in clear text', 'turn it on outside of tests');
  }
  if (config.admins.length) {
    const m = config.modules;
    if ((m.enabled === null || m.enabled.includes('admin_adhoc')) && !m.disabled.includes('admin_adhoc')) {
      r.line('ok', `admins: ${config.admins.join(', ')} may run the server's admin commands from their clients (XEP-0133: add, remove and re-password accounts, list who is online, announce) and own every group chat`);
    } else {
      r.line('warn', `admins: ${config.admins.join(', ')} get no admin commands in their clients: module admin_adhoc is not enabled`,
        'enable it, or administer with the chorus command on this machine (adduser, passwd, deluser, status, kill, reload)');
    }
  }
  for (const admin of config.admins) {
    const domain = admin.slice(admin.lastIndexOf('@') + 1);
    if (!config.hosts.includes(domain)) r.line('warn', `admins: ${admin} is not on one of this server's hosts`, 'admins are normally local accounts');
  }
  if (config.hosts.length === 1 && config.hosts[0] === 'localhost' && !['127.0.0.1', '::1', 'localhost'].includes(config.listen.address)) {
    r.line('warn', `hosts is only "localhost" but listen.address is ${config.listen.address}`, 'set hosts to your domain, or listen on 127.0.0.1');
  }
  if (config.schedulers > availableParallelism()) {
    r.line('warn', `schedulers: ${config.schedulers} threads on ${availableParallelism()} CPUs`, 'more schedulers than CPUs only adds contention');
  }
}

/** Whether another process holds the database's lock (a brief open and close when none does; a
 *  database that was never opened has no LOCK file, and nothing is created to find that out). */
async function heldElsewhere(config: ChorusConfig): Promise<boolean> {
  if (!existsSync(join(dataPaths(config).db, 'LOCK'))) return false;
  try {
    await (await openDb(config.data_dir)).close();
    return false;
  } catch (e) {
    return isLockedError(e);
  }
}
