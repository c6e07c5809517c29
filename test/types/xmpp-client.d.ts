// The parts of @xmpp/client (which ships no types) that the tests use.
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events';
  export interface Element {
    name: string;
    attrs: Record<string, string>;
    children: Array<Element | string>;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    toString(): string;
  }
  export interface Client extends EventEmitter {
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element>; get(el: Element, to?: string): Promise<Element> };
    streamManagement: { enabled: boolean; id: string; inbound: number; outbound: number; outbound_q: unknown[] };
    jid: { toString(): string } | null;
    status: string;
    socket: { end(): void; destroy(): void; socket?: { destroy(): void } } | null;
    reconnect: { stop(): void };
  }
  /** `userAgent`: XEP-0388's <user-agent/> (its id names the installation); random per client if absent. */
  export function client(opts: { service: string; domain: string; username?: string; password?: string; resource?: string; credentials?: unknown; userAgent?: Element }): Client;
  export function xml(name: string, attrs?: Record<string, string | number | undefined> | null, ...children: Array<Element | string>): Element;
  export function jid(s: string): { toString(): string; bare(): { toString(): string } };
}
