// The framer names the stream error for what it rejects, so the condition names live here.
/** RFC 6120 §4.9.3. */
export type StreamErrorCondition =
  | 'bad-format' | 'bad-namespace-prefix' | 'conflict' | 'connection-timeout' | 'host-gone' | 'host-unknown'
  | 'improper-addressing' | 'internal-server-error' | 'invalid-from' | 'invalid-namespace' | 'invalid-xml'
  | 'not-authorized' | 'not-well-formed' | 'policy-violation' | 'remote-connection-failed' | 'reset'
  | 'resource-constraint' | 'restricted-xml' | 'see-other-host' | 'system-shutdown' | 'undefined-condition'
  | 'unsupported-encoding' | 'unsupported-feature' | 'unsupported-stanza-type' | 'unsupported-version';

/** A violation found while reading XML; `condition` is the RFC 6120 §4.9.3 stream error to send. */
export class XmlError extends Error {
  readonly condition: StreamErrorCondition;
  constructor(condition: StreamErrorCondition, message: string) {
    super(message);
    this.name = 'XmlError';
    this.condition = condition;
  }
}
