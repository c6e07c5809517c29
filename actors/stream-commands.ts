// What the stream machines (a client's, a server's, a component's stream) tell their connection,
// as named actions with parameters: a command (`toConn`), a write, and the end of the stream with
// a stream error — each machine gives its own error XML (its header's namespace).
import type { EventObject } from 'xstate';
import type { ToConn, ToSession } from '../src/net/c2s-protocol.ts';
import type { StreamErrorCondition } from '../src/xmpp/errors.ts';

/** Any transition's arguments. */
export type StreamArgs<C> = { context: C; event: EventObject };
type Stanza = Extract<ToSession, { type: 'stanza' }>;

export interface StreamCommands<C> {
  toConn(params: ToConn | ((a: StreamArgs<C>) => ToConn)): { readonly type: 'toConn'; readonly params: ToConn | ((a: StreamArgs<C>) => ToConn) };
  write(xml: string | ((a: StreamArgs<C>) => string)): ReturnType<StreamCommands<C>['toConn']>;
  /** End the stream with this error (with our header first if we sent none). */
  fail(condition: StreamErrorCondition, text?: string | ((a: StreamArgs<C>) => string), headerSent?: boolean): ReturnType<StreamCommands<C>['toConn']>;
  /** A guard: the stanza is `<name xmlns=…>`. */
  is(name: string, xmlns: string): (a: StreamArgs<C>) => boolean;
}

export function streamCommands<C>(failXml: (ctx: C, condition: StreamErrorCondition, text: string | undefined, headerSent: boolean) => string): StreamCommands<C> {
  const toConn: StreamCommands<C>['toConn'] = (params) => ({ type: 'toConn', params } as const);
  return {
    toConn,
    write: (xml) => toConn(typeof xml === 'string' ? { type: 'write', xml } : (a) => ({ type: 'write', xml: xml(a) })),
    fail: (condition, text, headerSent = true) =>
      toConn((a) => ({ type: 'close', xml: failXml(a.context, condition, typeof text === 'function' ? text(a) : text, headerSent) })),
    is: (name, xmlns) => ({ event }) => (event as Stanza).h.name === name && (event as Stanza).h.xmlns === xmlns,
  };
}
