#!/usr/bin/env python3
"""SOCKS5 Bytestreams through the server's proxy (XEP-0065), with slixmpp's own plugin: alice finds
the proxy (disco#items of her server, disco#info: proxy/bytestreams) and where it listens, offers it
to bob, bob connects through it and says so, alice connects, asks the proxy to activate the pair,
and bytes go both ways. Prints one JSON line: the proxies found, what each side received, or an error."""
import asyncio, sys
from slixmpp_common import Client, connect, run

host, port, domain, password = sys.argv[1:5]
out = {}


async def scenario():
    alice = Client(f"alice@{domain}/sender", password, ("xep_0030", "xep_0065"))
    bob = Client(f"bob@{domain}/receiver", password, ())
    bob.register_plugin("xep_0030")
    bob.register_plugin("xep_0065", {"auto_accept": True})
    loop = asyncio.get_event_loop()
    bob_got, alice_got, bob_conn = loop.create_future(), loop.create_future(), loop.create_future()
    bob.add_event_handler("socks5_stream", lambda conn: bob_conn.done() or bob_conn.set_result(conn))
    bob.add_event_handler("socks5_data", lambda d: bob_got.done() or bob_got.set_result(d))
    alice.add_event_handler("socks5_data", lambda d: alice_got.done() or alice_got.set_result(d))
    await connect(alice, host, port)
    await connect(bob, host, port)
    proxies = await alice["xep_0065"].discover_proxies(timeout=10)
    out["proxies"] = {str(j): [h, int(p)] for j, (h, p) in proxies.items()}
    sock = await alice["xep_0065"].handshake(bob.boundjid.full, timeout=10)
    await sock.write(b"a file, in bytes")
    out["bob_got"] = (await asyncio.wait_for(bob_got, 10)).decode()
    conn = await asyncio.wait_for(bob_conn, 10)
    await conn.write(b"thanks")
    out["alice_got"] = (await asyncio.wait_for(alice_got, 10)).decode()
    alice.disconnect()
    bob.disconnect()


run(scenario, out)
