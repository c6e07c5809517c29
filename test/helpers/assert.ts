import * as assert from 'uvu/assert';

/** uvu has no async rejects: assert that `fn` rejects with a message matching `re`. */
export async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try { await fn(); } catch (err) { assert.match((err as Error).message, re); return; }
  assert.unreachable(`expected a rejection matching ${re}`);
}
