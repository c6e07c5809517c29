import type { StreamErrorCondition } from '../xmpp/errors.ts';

/** A violation found while reading XML; `condition` is the RFC 6120 §4.9.3 stream error to send. */
export class XmlError extends Error {
  readonly condition: StreamErrorCondition;
  constructor(condition: StreamErrorCondition, message: string) {
    super(message);
    this.name = 'XmlError';
    this.condition = condition;
  }
}
