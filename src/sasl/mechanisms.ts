// Which mechanisms a connection is offered, and starting the one a client picks.
import type { ChannelBindingType, HashName, SaslFailureCondition, SaslServer, SaslServerOptions } from './types.ts';
import { HASHES } from './types.ts';
import { ScramServer, isHashName } from './scram.ts';
import { PlainServer, type PlainServerOptions } from './plain.ts';
import { strictBase64 } from './server-common.ts';

export type MechanismName =
  | 'PLAIN'
  | `SCRAM-${HashName}`
  | `SCRAM-${HashName}-PLUS`;

export interface OfferContext {
  /** The stream is TLS-protected. */
  tls: boolean;
  /** Channel binding types this connection can provide data for. */
  channelBindings: readonly ChannelBindingType[];
  /** Offer PLAIN without TLS (loopback benchmarks only). */
  allowPlainWithoutTls?: boolean;
  /** Offer PLAIN at all (default true). */
  plain?: boolean;
  /** SCRAM hashes to offer, strongest first (default SHA-512, SHA-256, SHA-1). */
  hashes?: readonly HashName[];
}

/** Mechanisms to advertise, strongest first. */
export function offeredMechanisms(ctx: OfferContext): MechanismName[] {
  const hashes = ctx.hashes ?? HASHES;
  const out: MechanismName[] = [];
  if (ctx.channelBindings.length > 0) for (const h of hashes) out.push(`SCRAM-${h}-PLUS`);
  for (const h of hashes) out.push(`SCRAM-${h}`);
  if (ctx.plain !== false && (ctx.tls || ctx.allowPlainWithoutTls)) out.push('PLAIN');
  return out;
}

export interface MechanismOptions extends SaslServerOptions, Pick<PlainServerOptions, 'hashPreference'> {
  /** Binding data for this connection, by type (only types also listed in OfferContext are used). */
  channelBindingData?: Partial<Record<ChannelBindingType, Uint8Array>>;
  /** Server nonce source for SCRAM (tests). */
  nonce?: () => string;
  /** On this connection the client already tried a -PLUS mechanism with a binding type we do not
   *  offer: it saw our -PLUS offer, so its 'y' that follows is a fallback, not a downgrade. */
  bindingRefused?: boolean;
}

export type MechanismSelection =
  | { ok: true; server: SaslServer }
  | { ok: false; condition: Extract<SaslFailureCondition, 'invalid-mechanism' | 'encryption-required'> };

/** Starts the mechanism named in <auth mechanism='…'/>, or says which failure to answer with. */
export function selectMechanism(name: string, ctx: OfferContext, options: MechanismOptions): MechanismSelection {
  const offered = offeredMechanisms(ctx);
  if (name === 'PLAIN') {
    if (ctx.plain !== false && !ctx.tls && !ctx.allowPlainWithoutTls) return { ok: false, condition: 'encryption-required' };
    if (!offered.includes('PLAIN')) return { ok: false, condition: 'invalid-mechanism' };
    return { ok: true, server: new PlainServer(options) };
  }
  const m = /^SCRAM-(SHA-1|SHA-256|SHA-512)(-PLUS)?$/.exec(name);
  const hash = m?.[1];
  if (!m || !hash || !isHashName(hash) || !(offered as string[]).includes(name)) return { ok: false, condition: 'invalid-mechanism' };
  const bindings: Partial<Record<ChannelBindingType, Uint8Array>> = {};
  for (const t of ctx.channelBindings) {
    const data = options.channelBindingData?.[t];
    if (data) bindings[t] = data;
  }
  const server = new ScramServer({
    ...options,
    hash,
    plus: m[2] !== undefined,
    plusOffered: offered.some((o) => o.endsWith('-PLUS')) && !options.bindingRefused,
    channelBindings: bindings,
    // The stream's features list XEP-0440's element exactly when there are binding types to offer.
    advertised: { mechanisms: offered, ...(ctx.channelBindings.length ? { channelBindings: ctx.channelBindings } : {}) },
  });
  return { ok: true, server };
}

/**
 * Decodes the base64 text of <auth/>, <response/> (RFC 6120 §6.4.2: "=" is an empty payload).
 * Undefined means the text is not base64: answer `incorrect-encoding`.
 */
export function decodeSaslPayload(text: string): Buffer | undefined {
  const t = text.replace(/[ \t\r\n]/g, '');
  if (t === '=' || t === '') return Buffer.alloc(0);
  return strictBase64(t);
}

/** Text for <challenge/> or <success/>: '' for no data, '=' for zero-length data (RFC 6120 §6.3.10). */
export function encodeSaslPayload(data: Uint8Array | undefined): string {
  if (data === undefined) return '';
  return data.length === 0 ? '=' : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}
