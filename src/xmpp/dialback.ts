// Server Dialback keys (XEP-0185): a key proves that the originating server's own side sent it,
// without state: anyone of ours who knows the node secret can recompute it for the verify request.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC-SHA256(SHA256(secret) in hex, "receiving originating streamId"), in hex (XEP-0185 §3). */
export function dialbackKey(secret: string, receiving: string, originating: string, streamId: string): string {
  const k = createHash('sha256').update(secret).digest('hex');
  return createHmac('sha256', k).update(`${receiving} ${originating} ${streamId}`).digest('hex');
}

/** The key a peer showed is the one we would have made (compared in constant time). */
export function dialbackKeyValid(secret: string, receiving: string, originating: string, streamId: string, key: string): boolean {
  const want = Buffer.from(dialbackKey(secret, receiving, originating, streamId));
  const got = Buffer.from(key.trim());
  return got.length === want.length && timingSafeEqual(got, want);
}
