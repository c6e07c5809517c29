// A request's body as text, bounded: what the handlers that take small bodies (BOSH, the observer's
// forms and actions) read.
import type { IncomingMessage } from 'node:http';

/** Reads a request's body, up to `max` bytes; null when it is larger (the request is cut off). */
export function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) { resolve(null); req.destroy(); return; }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}
