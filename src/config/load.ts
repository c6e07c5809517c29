import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Document } from 'yaml';
import { moduleProblems } from '../xmpp/modules.ts';
import { defaultConfig } from './defaults.ts';
import { formatPath, validateConfig, type KeyPath } from './validate.ts';
import type { ChorusConfig } from './types.ts';

/** Every problem found in a config file; `message` has one `config error: …` line per problem. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(problems.map((p) => `config error: ${p}`).join('\n'));
  }
}

/**
 * Load and validate a config file. With no path, the built-in defaults (data_dir relative to the cwd).
 * Throws ConfigError listing every problem at once.
 */
export async function loadConfig(path?: string): Promise<ChorusConfig> {
  if (path === undefined) {
    // No file: a node for the domain localhost, reachable from this machine only.
    const c = defaultConfig();
    c.listen.address = '127.0.0.1';
    return c;
  }
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(e);
    throw new ConfigError([`${file}: cannot read: ${why}`]);
  }
  const config = parseConfig(text, { source: file, baseDir: dirname(file) });
  // The modules' own checks (names, options, dependencies), as the schedulers will run them; a config
  // that says nothing of modules has nothing of its own to check (and every command loads a config).
  const m = config.modules;
  if (m.enabled !== null || m.disabled.length || Object.keys(m.options).length || Object.keys(m.hosts ?? {}).length || m.paths?.length) {
    const problems = await moduleProblems(config.hosts, m);
    if (problems.length) throw new ConfigError(problems);
  }
  return config;
}

/** Parse and validate YAML text; `baseDir` anchors relative paths. Exposed for tests and tools. */
export function parseConfig(text: string, opts: { source?: string | null; baseDir: string; checkFiles?: boolean }): ChorusConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const label = opts.source ?? 'config';
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((err) => {
      const { line, col } = lines.linePos(err.pos[0]);
      return `${label}:${line}:${col}: invalid YAML: ${err.message.split('\n')[0]}`;
    }));
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const { config, problems } = validateConfig(raw, { baseDir: opts.baseDir, source: opts.source ?? null, checkFiles: opts.checkFiles ?? true });
  if (problems.length) {
    // Report in file order, so the list reads top to bottom like the file.
    const located = problems.map((p, i) => ({ ...p, i, at: locate(doc, p.path) }));
    located.sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity) || a.i - b.i);
    throw new ConfigError(located.map(({ path, message, at }) => {
      const where = at === undefined ? '' : ` (line ${lines.linePos(at).line})`;
      return `${path.length ? formatPath(path) + ': ' : ''}${message}${where}`;
    }));
  }
  return config;
}

/** Source offset of the key (or list item) a problem path points at, for "(line N)" hints. */
function locate(doc: Document, path: KeyPath): number | undefined {
  let node: unknown = doc.contents;
  let at: number | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return at;
      at = isScalar(pair.key) ? pair.key.range?.[0] : at;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (!item) return at;
      at = (item as { range?: [number, number, number] }).range?.[0] ?? at;
      node = item;
    } else return at;
  }
  return at;
}
