// A certificate authority made for one test: a CA and a certificate it signs for each domain (with
// its conference subdomain), for server streams that prove their domains (XEP-0178).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  /** The CA's certificate (PEM file): what s2s.ca_file trusts. */
  ca: string;
  /** The tls entry of a domain the CA signed. */
  tlsFor(domain: string): { cert: string; key: string };
  remove(): void;
}

export function testCa(domains: string[]): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-test-ca-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=Chorus test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-keyout', file('ca.key'), '-out', file('ca.pem'));
  for (const d of domains) {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${d}`, '-keyout', file(`${d}.key`), '-out', file(`${d}.csr`));
    writeFileSync(file(`${d}.ext`), `subjectAltName=DNS:${d},DNS:conference.${d}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl('x509', '-req', '-in', file(`${d}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file(`${d}.ext`), '-out', file(`${d}.crt`));
  }
  return {
    ca: file('ca.pem'),
    tlsFor: (d) => ({ cert: file(`${d}.crt`), key: file(`${d}.key`) }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
