import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChorusConfig } from './types.ts';

/**
 * The configuration used when no file is given, and the base every file is merged onto.
 * `baseDir` is what a relative data_dir is resolved against (the cwd when there is no file).
 */
export function defaultConfig(baseDir: string = process.cwd()): ChorusConfig {
  return {
    source: null,
    hosts: ['localhost'],
    admins: [],
    data_dir: resolve(baseDir, 'data'),
    listen: {
      address: '::',
      c2s: 5222,
      c2s_direct_tls: 5223,
      s2s: 5269,
      s2s_direct_tls: 5270,
      http: 5280,
      https: 5281,
      component: 5347,
    },
    tls: {},
    components: {},
    s2s: { hosts: {}, connect_timeout_seconds: 10, idle_timeout_seconds: 600, secure_auth: false, ca_file: null, bytes_per_second: 1_048_576, max_stanza_bytes: 524_288 },
    c2s_require_encryption: true,
    c2s_sasl2: true,
    c2s_fast_token_days: 21,
    schedulers: availableParallelism(),
    limits: {
      max_stanza_bytes: 262_144,
      bytes_per_second: 65_536,
      stanzas_per_second: 200,
      stanza_burst: 1000,
      stanza_timeout_seconds: 60,
      burst_bytes: 524_288,
      sessions_per_account: 10,
      auth_timeout_seconds: 30,
      bosh_inactivity_seconds: 60,
      connections_per_ip: 100,
      connections_per_ip_exempt: ['127.0.0.1', '::1'],
      unauthenticated_connections: 10_000,
      max_outbound_bytes: 4_194_304,
      max_xml_depth: 32,
      max_xml_attributes: 64,
      login_attempts: { max_failures: 5, window_seconds: 60, address_max_failures: 30, address_window_seconds: 180 },
    },
    stream_management: { resume_timeout_seconds: 300, max_unacked: 1000 },
    storage: { sync: false },
    metrics: { enabled: true, username: 'prometheus', password: null },
    observer: { enabled: true },
    modules: { enabled: null, disabled: [], options: {}, paths: [] },
    log_level: 'info',
    log_file: null,
  };
}

/** Where the node keeps things inside data_dir; one place so the CLI, runtime and TLS agree. */
export function dataPaths(config: Pick<ChorusConfig, 'data_dir'>): { db: string; adminSocket: string; certs: string } {
  return {
    db: join(config.data_dir, 'db'),
    adminSocket: join(config.data_dir, 'admin.sock'),
    certs: join(config.data_dir, 'certs'),
  };
}
