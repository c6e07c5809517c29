// What the stream engine has carried since the node started, counted where it passes (a field
// increment on the chat path): stanzas read from streams and written to them, by kind, and the
// duplicates not written.
// Modules' own counters (HttpRoute.counters: the bytes files shared carried) are kept beside them.
// /metrics reports it.
export const traffic = {
  in: { message: 0, presence: 0, iq: 0 },
  out: { message: 0, presence: 0, iq: 0 },
  /** Durable deliveries a connection was handed again and did not write again (a scheduler thread
   *  died and its replacement loaded from disk what the connection still held or had just released). */
  duplicatesDropped: 0,
  /** By name (exported as chorus_<name>_total), with the help its module gave. */
  modules: new Map<string, { help: string; value: number }>(),
};
