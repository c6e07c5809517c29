#!/usr/bin/env python3
"""Group chat (XEP-0045) with slixmpp's own xep_0045 plugin: alice, bob and carol on one server.
Prints one JSON line: what each step showed, or an error.

  alice creates family@conference.<domain> (201), configures it (name, persistent)
  bob joins (alice is there, the subject ends the join); alice and bob talk
  carol asks for Bob's nick (conflict), joins as Carol with history (both messages, delayed)
  alice sets the subject (bob sees it), kicks carol (307), bob leaves (alice sees him go)"""
import asyncio, sys
import slixmpp
from slixmpp.exceptions import PresenceError
from slixmpp_common import Client as Base, connect as login, run

host, port, domain, password = sys.argv[1:5]
room = slixmpp.JID(f"family@conference.{domain}")
out = {}


class Client(Base):
    def __init__(self, name):
        super().__init__(f"{name}@{domain}/pc", password, ("xep_0030", "xep_0045", "xep_0203"))
        self.inbox = asyncio.Queue()
        self.add_event_handler("groupchat_message", lambda m: self.inbox.put_nowait(("message", m)))
        self.add_event_handler("groupchat_subject", lambda m: self.inbox.put_nowait(("subject", m)))
        self.add_event_handler("groupchat_presence", lambda p: self.inbox.put_nowait(("presence", p)))

    async def next(self, kind, test=lambda s: True):
        while True:
            k, s = await asyncio.wait_for(self.inbox.get(), 15)
            if k == kind and test(s):
                return s

    @property
    def muc(self):
        return self.plugin["xep_0045"]


async def connect(c):
    await login(c, host, port)


async def main():
    alice, bob, carol = Client("alice"), Client("bob"), Client("carol")
    for c in (alice, bob, carol):
        await connect(c)

    pres, subject, occupants, history = await alice.muc.join_muc_wait(room, "Alice", maxstanzas=0, timeout=15)
    out["created"] = sorted(pres["muc"]["status_codes"])
    out["alice_role"] = [pres["muc"]["affiliation"], pres["muc"]["role"]]
    form = await alice.muc.get_room_config(room)
    form.field["muc#roomconfig_roomname"]["value"] = "Family"
    form.field["muc#roomconfig_persistentroom"]["value"] = True
    await alice.muc.set_room_config(room, form)
    info = await alice.plugin["xep_0030"].get_info(jid=room)
    out["features"] = sorted(f for f in info["disco_info"]["features"] if f.startswith("muc_"))
    out["name"] = [i[3] for i in info["disco_info"]["identities"]]

    pres, subject, occupants, history = await bob.muc.join_muc_wait(room, "Bob", maxstanzas=0, timeout=15)
    out["bob_sees"] = sorted(p["from"].resource for p in occupants)
    alice.send_message(mto=room, mbody="hello", mtype="groupchat")
    m = await bob.next("message", lambda m: m["body"] == "hello")
    out["bob_got"] = [m["from"].full, m["body"]]
    bob.send_message(mto=room, mbody="hi alice", mtype="groupchat")
    m = await alice.next("message", lambda m: m["body"] == "hi alice")
    out["alice_got"] = [m["from"].resource, m["body"]]

    try:
        await carol.muc.join_muc_wait(room, "Bob", maxstanzas=0, timeout=15)
        out["conflict"] = "joined"
    except PresenceError as e:
        out["conflict"] = e.condition
    pres, subject, occupants, history = await carol.muc.join_muc_wait(room, "Carol", maxstanzas=10, timeout=15)
    out["carol_history"] = [[h["from"].resource, h["body"], h["delay"]["from"].full] for h in history]

    alice.muc.set_subject(room, "Dinner at 8")
    s = await bob.next("subject", lambda m: m["subject"] == "Dinner at 8")
    out["subject"] = [s["from"].resource, s["subject"]]

    await alice.muc.set_role(room, "Carol", "none", reason="sorry")
    p = await carol.next("presence", lambda p: p["type"] == "unavailable")
    out["kicked"] = sorted(p["muc"]["status_codes"])

    bob.muc.leave_muc(room, "Bob", msg="bye")
    p = await alice.next("presence", lambda p: p["type"] == "unavailable" and p["from"].resource == "Bob")
    out["bob_left"] = p["status"]

    for c in (alice, bob, carol):
        c.disconnect()


run(main, out)
