// XEP-0092 Software Version: the server's name ("Chorus") and version (package.json, read once). The
// operating system is left out unless `show_os` is on (XEP-0092 §5: it helps attackers).
import { readFileSync } from 'node:fs';
import { release, type } from 'node:os';
import { x } from '../xml/builder.ts';
import { defineModule } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';

let cachedVersion: string | undefined;

/** The version in Chorus's package.json (read on first use, then cached). */
export function chorusVersion(): string {
  if (cachedVersion === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cachedVersion = typeof pkg.version === 'string' && pkg.version !== '' ? pkg.version : 'unknown';
  }
  return cachedVersion;
}

const options = {
  show_os: { type: 'boolean', default: false, doc: 'Include the operating system (type and release) in version replies.' },
} as const;

export default defineModule({
  name: 'version',
  description: 'Software Version (XEP-0092): the server reports its name and version.',
  xeps: [{ xep: 92, version: '1.1', status: 'complete' }],
  features: { host: [NS.VERSION] },
  options,
  setup(m) {
    const version = chorusVersion();
    const os = `${type()} ${release()}`;
    m.iq('get', 'host', NS.VERSION, (iq) => {
      const showOs = m.optionsFor(iq.host).show_os;
      iq.reply(x('query', { xmlns: NS.VERSION },
        x('name', null, 'Chorus'),
        x('version', null, version),
        showOs && x('os', null, os)));
    });
    m.iq('set', 'host', NS.VERSION, (iq) => iq.error('not-allowed'));
  },
});
