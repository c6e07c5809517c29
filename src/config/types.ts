// The typed shape of a validated configuration. Every path in here is absolute (resolved against the
// config file's directory, or the working directory when there is no file) so nothing downstream
// depends on the process's cwd.

import type { ModulesConfig } from '../xmpp/modules.ts';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

/** A TCP port, or `false` when that listener is disabled. */
export type PortSetting = number | false;

export interface ListenConfig {
  /** Address every listener binds to ('::' = all IPv6 and, on dual-stack hosts, IPv4 too). */
  address: string;
  c2s: PortSetting;
  c2s_direct_tls: PortSetting;
  s2s: PortSetting;
  /** Servers, TLS from the first byte (XEP-0368); opened only with listen.s2s (federation on). */
  s2s_direct_tls: PortSetting;
  /** HTTP (file sharing, XEP-0363): plain, for a reverse proxy in front or for loopback. */
  http: PortSetting;
  /** HTTPS with the hosts' certificates (by SNI). */
  https: PortSetting;
  component: PortSetting;
}
export type ListenerName = Exclude<keyof ListenConfig, 'address'>;
export const LISTENER_NAMES: readonly ListenerName[] = ['c2s', 'c2s_direct_tls', 's2s', 's2s_direct_tls', 'http', 'https', 'component'];

export interface TlsHostConfig {
  /** PEM certificate chain, leaf first (Let's Encrypt: fullchain.pem). Absolute path. */
  cert: string;
  /** PEM private key (Let's Encrypt: privkey.pem). Absolute path. */
  key: string;
}

export interface LoginAttemptsConfig {
  /** Failed logins allowed per account within window_seconds (from sources that have failed). */
  max_failures: number;
  window_seconds: number;
  /** Failed logins allowed per client address (an IPv6 /64) within address_window_seconds, whatever
   *  the accounts tried: what stops one source guessing across many accounts. */
  address_max_failures: number;
  address_window_seconds: number;
}

export interface LimitsConfig {
  max_stanza_bytes: number;
  /** Sustained read rate per session; false = unlimited. */
  bytes_per_second: number | false;
  /** Bytes a session may read at once above the sustained rate (token-bucket size). */
  burst_bytes: number;
  /** Sustained stanzas per second a bound session may send; false = unlimited. */
  stanzas_per_second: number | false;
  /** Stanzas a session may send at once above that rate. */
  stanza_burst: number;
  /** Seconds a stanza may take to arrive once begun (a slowloris trickling one); 0 = no limit. */
  stanza_timeout_seconds: number;
  sessions_per_account: number;
  auth_timeout_seconds: number;
  /** Seconds a BOSH session lives with no request from its client (XEP-0124 'inactivity'). */
  bosh_inactivity_seconds: number;
  /** Open client connections from one address (an IPv6 /64 counts as one). */
  connections_per_ip: number;
  /** Addresses connections_per_ip does not apply to (this machine; a reverse proxy). */
  connections_per_ip_exempt: string[];
  /** Client connections not yet authenticated, in total. */
  unauthenticated_connections: number;
  /** Bytes waiting to be written to one client beyond which it is closed as not reading. */
  max_outbound_bytes: number;
  /** Element nesting in a stanza (the stanza itself is depth 1). */
  max_xml_depth: number;
  /** Attributes (namespace declarations included) on one element. */
  max_xml_attributes: number;
  login_attempts: LoginAttemptsConfig;
}

export interface StreamManagementConfig {
  resume_timeout_seconds: number;
  /** Largest queue of unacknowledged stanzas a session may hold before it is closed. */
  max_unacked: number;
}

export interface StorageConfig {
  /** fsync every group commit: an acknowledged stanza survives power loss, not only a process kill. */
  sync: boolean;
}

/** The feature modules' section; its type belongs to the module loader (src/xmpp/modules.ts). */
export type { ModulesConfig };

export interface ComponentConfig {
  /** The shared secret of the component's handshake. */
  secret: string;
}

/** Server-to-server links (federation), when listen.s2s is on. */
export interface S2sConfig {
  /** Where a remote domain's server is, overriding DNS (private deployments, tests): domain →
   *  'host:port' (STARTTLS) or 'tls://host:port' (Direct TLS, XEP-0368). */
  hosts: Record<string, { host: string; port: number; directTls?: boolean }>;
  /** How long connecting to one address may take before the next is tried. */
  connect_timeout_seconds: number;
  /** An outbound link with nothing sent for this long closes (it opens again for the next stanza). */
  idle_timeout_seconds: number;
  /** Peers must prove their domain with a certificate (SASL EXTERNAL, XEP-0178); no dialback. */
  secure_auth: boolean;
  /** CAs trusted for peers' certificates besides the system's (a PEM bundle). Absolute path. */
  ca_file: string | null;
  /** Sustained read rate of one server stream (it carries many users' traffic, so it is not the
   *  client limit); four times this may come at once. false = unlimited. */
  bytes_per_second: number | false;
  /** The largest stanza a server stream may carry (Prosody's s2s_stanza_size_limit); above it the
   *  stream ends with policy-violation. */
  max_stanza_bytes: number;
}

export interface MetricsConfig {
  enabled: boolean;
  /** Basic auth for scrapers from elsewhere; with no password only loopback is answered. */
  username: string;
  password: string | null;
}

export interface ChorusConfig {
  /** Absolute path of the YAML file this came from, or null for built-in defaults. */
  source: string | null;
  hosts: string[];
  admins: string[];
  data_dir: string;
  listen: ListenConfig;
  /** Keyed by host domain. Hosts without an entry get a self-signed certificate at first start. */
  tls: Record<string, TlsHostConfig>;
  /** External components (XEP-0114: gateways, bots), keyed by the domain each serves. */
  components: Record<string, ComponentConfig>;
  s2s: S2sConfig;
  c2s_require_encryption: boolean;
  /** Offer XEP-0388 SASL2 with XEP-0386 Bind 2, XEP-0198 inline and FAST (XEP-0484). */
  c2s_sasl2: boolean;
  /** How long a FAST token lives (XEP-0484): a device unused this long logs in with its password. */
  c2s_fast_token_days: number;
  schedulers: number;
  limits: LimitsConfig;
  stream_management: StreamManagementConfig;
  storage: StorageConfig;
  /** /metrics (Prometheus) on the HTTP listeners. */
  metrics: MetricsConfig;
  /** The web observer (/observer on the HTTP listeners), for the admins. */
  observer: { enabled: boolean };
  modules: ModulesConfig;
  log_level: LogLevel;
  /** Where the log goes: a file (appended to; reopened by chorus reload, for logrotate), or null
   *  for stderr (what systemd's journal takes). */
  log_file: string | null;
}
