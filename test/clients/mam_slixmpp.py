#!/usr/bin/env python3
"""Message archives (XEP-0313) with slixmpp's own xep_0313 plugin, paging with its xep_0059: bob
writes alice 25 messages while her phone is online; later her laptop logs in and pages the archive.
Prints one JSON line: what each step showed, or an error.

  the phone sees each message with a <stanza-id/> by alice's account
  the laptop pages the whole archive 10 at a time, oldest first: all 25, in order, the stanza-ids
  the laptop pages it newest first (<before/>) and asks for bob's messages only"""
import asyncio, sys
import slixmpp
from slixmpp_common import Client as Base, connect as login, run

host, port, domain, password = sys.argv[1:5]
out = {}


class Client(Base):
    def __init__(self, jid):
        super().__init__(jid, password, ("xep_0030", "xep_0059", "xep_0297", "xep_0313", "xep_0359"))
        self.got = []
        self.add_event_handler("message", lambda m: m["body"] and not m.xml.find("{urn:xmpp:mam:2}result") and self.got.append(m))


async def connect(c):
    await login(c, host, port)


async def main():
    phone, bob = Client(f"alice@{domain}/phone"), Client(f"bob@{domain}/pc")
    for c in (phone, bob):
        await connect(c)
    await asyncio.sleep(0.5)
    for i in range(1, 26):
        bob.send_message(mto=f"alice@{domain}", mbody=f"m{i}", mtype="chat")
    for _ in range(150):
        if len(phone.got) >= 25:
            break
        await asyncio.sleep(0.1)
    ids = [m.xml.find("{urn:xmpp:sid:0}stanza-id") for m in phone.got]
    out["phone_count"] = len(phone.got)
    out["stanza_ids"] = [e is not None and e.get("by") == f"alice@{domain}" for e in ids].count(True)

    laptop = Client(f"alice@{domain}/laptop")
    await connect(laptop)
    pages = []
    async for r in laptop.plugin["xep_0313"].iterate(rsm={"max": 10}):
        pages.append((r["mam_result"]["id"], r["mam_result"]["forwarded"]["stanza"]["body"]))
    out["all"] = [b for _, b in pages]
    out["ids_match"] = [i for i, _ in pages] == [e.get("id") for e in ids]
    newest = []
    async for r in laptop.plugin["xep_0313"].iterate(rsm={"max": 10}, reverse=True, total=12):
        newest.append(r["mam_result"]["forwarded"]["stanza"]["body"])
    out["newest"] = newest
    count = 0
    async for r in laptop.plugin["xep_0313"].iterate(with_jid=slixmpp.JID(f"bob@{domain}"), rsm={"max": 50}):
        count += 1
    out["with_bob"] = count
    for c in (phone, bob, laptop):
        c.disconnect()


run(main, out)
