// The Storage facade modules get: JSON values under string keys, over the node's LevelDB handle.
import type { ClassicLevel } from 'classic-level';
import type { Storage } from '../xmpp/module.ts';
import { range } from './db.ts';

export function kvStorage(db: ClassicLevel<string, string>): Storage {
  const opts = { valueEncoding: 'json' } as const;
  return {
    get: async <T>(key: string) => (await db.get<string, T>(key, opts)) as T | undefined,
    put: (key, value) => db.put<string, unknown>(key, value, opts),
    del: (key) => db.del(key),
    range: async <T>(prefix: string, o: { limit?: number; reverse?: boolean } = {}) => {
      const out: Array<[string, T]> = [];
      for await (const [k, v] of db.iterator<string, T>({ ...range(prefix), limit: o.limit ?? -1, reverse: o.reverse ?? false, ...opts })) out.push([k, v]);
      return out;
    },
    batch: (ops) => db.batch(ops.map((op) => (op.type === 'put' ? { ...op, ...opts } : op)) as never),
  };
}
