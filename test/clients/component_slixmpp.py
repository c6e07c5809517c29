#!/usr/bin/env python3
"""An external component (XEP-0114) with slixmpp's own ComponentXMPP, as gateways and bots are
written: it connects to the component port with its secret, says hello to USER from bot@DOMAIN
once its session starts, and echoes the first message it gets. Prints one JSON line: what it saw.

  usage: component_slixmpp.py HOST PORT DOMAIN SECRET USER"""
import asyncio, sys
from slixmpp.componentxmpp import ComponentXMPP
from slixmpp_common import run

host, port, domain, secret, user = sys.argv[1:6]
out = {}


async def main():
    c = ComponentXMPP(domain, secret, host, int(port))
    done = asyncio.get_event_loop().create_future()

    def start(_):
        out["started"] = True
        c.send_message(mto=user, mfrom=f"bot@{domain}", mbody="hello from the gateway", mtype="chat")

    def message(m):
        out["got"] = [str(m["from"].bare), str(m["to"]), m["body"]]
        m.reply(f"echo: {m['body']}").send()
        done.done() or done.set_result(True)

    c.add_event_handler("session_start", start)
    c.add_event_handler("message", message)
    c.connect()
    await asyncio.wait_for(done, 40)
    await asyncio.sleep(0.5)
    c.disconnect()


run(main, out, 60)
