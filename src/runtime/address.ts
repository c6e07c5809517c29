// Addresses are names: `<kind>:<id>`, e.g. `session:juliet@example.com/balcony`, `user:juliet@example.com`,
// `room:hall@muc.example.com`, `s2s:example.com|example.net`. The kind prefix picks the actor module; the
// id up to its first '/' picks the scheduler, so one address always lives on one thread and a user's
// actor and all of its sessions share a thread: a chat message crosses threads at most once.

export type Address = string;

/** Thread 0 is the main (I/O) thread; schedulers are 1..n. */
export type ThreadId = number;
export const MAIN_THREAD: ThreadId = 0;

/** Kinds whose endpoints live on the main thread because they own sockets (Node cannot move a socket). */
const MAIN_THREAD_KINDS = new Set(['conn', 'node']);

export function kindOf(address: Address): string {
  const i = address.indexOf(':');
  return i < 0 ? address : address.slice(0, i);
}

/** FNV-1a over UTF-16 code units: cheap, stable across threads and restarts. */
export function hashAddress(address: Address): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The part of an address that decides its thread: the id without kind and without '/...'. */
export function placementKey(address: Address): string {
  const colon = address.indexOf(':');
  const slash = address.indexOf('/', colon + 1);
  return slash < 0 ? address.slice(colon + 1) : address.slice(colon + 1, slash);
}

export function placeAddress(address: Address, schedulers: number): ThreadId {
  if (MAIN_THREAD_KINDS.has(kindOf(address))) return MAIN_THREAD;
  return 1 + (hashAddress(placementKey(address)) % schedulers);
}

export function validAddress(address: unknown): address is Address {
  return typeof address === 'string' && /^[a-z][a-z0-9_-]*:./.test(address) && !address.includes('\u0000');
}
