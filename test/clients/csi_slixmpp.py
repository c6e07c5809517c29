#!/usr/bin/env python3
"""Client State Indication (XEP-0352) with slixmpp's own xep_0352 plugin: alice's phone tells the
server it is inactive; bob's presence update and chat state then wait on the server, while the same
chat state to her laptop (active) arrives at once; bob's next message, which has a body, cannot wait:
it arrives right after what waited, in order. Inactive again, a chat state waits until the phone says
it is active. Prints one JSON line: what each step showed, or an error."""
import asyncio, sys
import slixmpp
from slixmpp_common import Client as Base, connect as login, run

host, port, domain, password = sys.argv[1:5]
out = {}


class Client(Base):
    def __init__(self, jid, plugins=()):
        super().__init__(jid, password, ("xep_0030", "xep_0085", *plugins))
        self.got = []
        self.arrived = asyncio.Event()
        self.csi = asyncio.get_event_loop().create_future()
        self.add_event_handler("csi_enabled", lambda _: self.csi.done() or self.csi.set_result(True))
        self.add_event_handler("message", lambda m: m["body"] and self.note(m))
        self.add_event_handler("chatstate", self.note)
        self.add_event_handler("presence_available", self.note)

    def note(self, st):
        if str(st["from"]).startswith(f"bob@{domain}"):
            self.got.append(describe(st))
            self.arrived.set()

    async def wait_for(self, what, seconds=20):
        while what not in self.got:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), seconds)


def describe(st):
    if st.name == "presence":
        return f"presence:{st['status']}"
    if st["body"]:
        return f"body:{st['body']}"
    return f"state:{st['chat_state']}"


def chat_state(c, to, state):
    m = c.make_message(mto=to, mtype="chat")
    m["chat_state"] = state
    m.send()


async def main():
    phone = Client(f"alice@{domain}/phone", ("xep_0352",))
    laptop, bob = Client(f"alice@{domain}/laptop"), Client(f"bob@{domain}/pc")
    for c in (phone, laptop, bob):
        await login(c, host, port)
    await asyncio.wait_for(phone.csi, 10)
    out["csi_offered"] = True
    await phone.wait_for("presence:", 20)
    await laptop.wait_for("presence:", 20)
    phone.got.clear()
    phone["xep_0352"].send_inactive()
    # The server has the inactive state once it answers the phone's next request.
    await phone["xep_0030"].get_info(jid=domain)

    bob.send_presence(pstatus="away for lunch")
    chat_state(bob, f"alice@{domain}/phone", "composing")
    chat_state(bob, f"alice@{domain}/laptop", "composing")
    await laptop.wait_for("state:composing")
    await laptop.wait_for("presence:away for lunch")
    await asyncio.sleep(0.5)  # the laptop has both: anything not held would be at the phone by now
    out["phone_while_inactive"] = list(phone.got)

    bob.send_message(mto=f"alice@{domain}/phone", mbody="lunch?", mtype="chat")
    await phone.wait_for("body:lunch?")
    out["phone_after_body"] = list(phone.got)

    phone.got.clear()
    chat_state(bob, f"alice@{domain}/phone", "paused")
    chat_state(bob, f"alice@{domain}/laptop", "paused")
    await laptop.wait_for("state:paused")
    await asyncio.sleep(0.5)
    out["phone_before_active"] = list(phone.got)
    phone["xep_0352"].send_active()
    await phone.wait_for("state:paused")
    out["phone_after_active"] = list(phone.got)
    for c in (phone, laptop, bob):
        c.disconnect()


run(main, out, 120)
