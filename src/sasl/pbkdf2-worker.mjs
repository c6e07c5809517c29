// A piscina task (plain JavaScript: pool threads need no TypeScript loader): one PBKDF2 derivation.
import { pbkdf2Sync } from 'node:crypto';

export default function derive({ password, salt, iterations, keylen, digest }) {
  return pbkdf2Sync(password, salt, iterations, keylen, digest);
}
