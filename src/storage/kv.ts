// The Storage facade modules get: JSON values under string keys, over the node's LevelDB handle.
import type { Level } from 'level';
import type { RangeOptions, Storage } from '../xmpp/module.ts';
import { range } from './db.ts';

/** `commit`: the thread's group commit (the runtime's durable store), for withHandling(); without it
 *  (the CLI, where no actor handles messages) withHandling() is a bug and throws. */
export function kvStorage(db: Level<string, string>, commit?: { alsoWrite(ops: Array<{ type: 'put'; key: string; value: string } | { type: 'del'; key: string }>): void }): Storage {
  const opts = { valueEncoding: 'json' } as const;
  return {
    get: async <T>(key: string) => (await db.get<string, T>(key, opts)) as T | undefined,
    put: (key, value) => db.put<string, unknown>(key, value, opts),
    del: (key) => db.del(key),
    range: async <T>(prefix: string, o: RangeOptions = {}) => {
      const out: Array<[string, T]> = [];
      for await (const [k, v] of db.iterator<string, T>({ ...bounds(prefix, o), limit: o.limit ?? -1, reverse: o.reverse ?? false, ...opts })) out.push([k, v]);
      return out;
    },
    batch: (ops) => db.batch(ops.map((op) => (op.type === 'put' ? { ...op, ...opts } : op)) as never),
    withHandling: (ops) => {
      if (!commit) throw new Error('withHandling() outside of an actor handling a message');
      commit.alsoWrite(ops.map((op) => (op.type === 'put' ? { type: 'put', key: op.key, value: JSON.stringify(op.value) } : op)));
    },
  };
}

/** The prefix's bounds, narrowed by the caller's (which must lie within the prefix). */
export function bounds(prefix: string, o: RangeOptions): { gt?: string; gte?: string; lt?: string; lte?: string } {
  for (const b of [o.gt, o.gte, o.lt, o.lte]) if (b !== undefined && !b.startsWith(prefix)) throw new Error(`range bound ${b} is outside ${prefix}`);
  const p = range(prefix);
  return {
    ...(o.gt !== undefined ? { gt: o.gt } : { gte: o.gte ?? p.gte }),
    ...(o.lte !== undefined ? { lte: o.lte } : { lt: o.lt ?? p.lt }),
  };
}
