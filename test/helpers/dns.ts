// A DNS server on loopback for tests whose peer resolves other servers by DNS alone (ejabberd's SRV
// lookups) or that check what DNS says (chorus check): it answers SRV and A questions for the names
// it is given and NXDOMAIN for everything else.
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import * as dnsPacket from 'dns-packet';

export interface Srv { priority: number; weight: number; port: number; target: string }

export async function startDns(srv: Record<string, Srv[]>, a: Record<string, string[]> = {}): Promise<{ port: number; close(): void }> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, from) => {
    let query: dnsPacket.Packet;
    try { query = dnsPacket.decode(msg); } catch { return; }
    const q = query.questions?.[0];
    const name = q?.name.toLowerCase() ?? '';
    const records = q?.type === 'SRV' ? srv[name] : undefined;
    const addresses = q?.type === 'A' ? a[name] : undefined;
    const answer = dnsPacket.encode({
      type: 'response', id: query.id, questions: query.questions,
      // RCODE 3 (NXDOMAIN) in the low bits when the name is unknown.
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | (records || addresses ? 0 : 3),
      answers: [
        ...(records ?? []).map((data) => ({ type: 'SRV' as const, name: q!.name, ttl: 60, data })),
        ...(addresses ?? []).map((data) => ({ type: 'A' as const, name: q!.name, ttl: 60, data })),
      ],
    });
    socket.send(answer, from.port, from.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { port: socket.address().port, close: () => socket.close() };
}
