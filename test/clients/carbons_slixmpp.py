#!/usr/bin/env python3
"""Message Carbons (XEP-0280) with slixmpp's own plugin: bob on a phone (priority 1) and a laptop
(priority 0), both with carbons enabled, and alice. Prints one JSON line: what each of the three saw,
in order ("msg:<body>", "received:<body>", "sent:<body>>to"), or an error.

  alice -> bob (bare) m1        phone gets it, the laptop a <received/> copy
  phone -> alice m2             alice gets it, the laptop a <sent/> copy
  phone -> alice m3 <private/>  alice gets it, no copy; then m4, copied as m2 was
  laptop disables carbons; alice -> bob/phone m5 and phone -> alice m6: no copies to the laptop
  laptop enables carbons; alice -> bob (bare) m7: the laptop's next copy is m7's
Copies of one account reach a resource in the order they were made, so a copy that should not
exist would show up before the next one that should."""
import asyncio, json, ssl, sys
import slixmpp
from slixmpp.plugins.xep_0280.stanza import PrivateCarbon

host, port, domain, bob, alice, password = sys.argv[1:7]
seen = {"phone": [], "laptop": [], "alice": []}
waiters = []  # (name, predicate, future)


def note(name, entry):
    seen[name].append(entry)
    for w in list(waiters):
        if w[0] == name and w[1](entry) and not w[2].done():
            waiters.remove(w)
            w[2].set_result(entry)


def expect(name, entry):
    fut = asyncio.get_event_loop().create_future()
    if entry in seen[name]:
        fut.set_result(entry)
    else:
        waiters.append((name, lambda e: e == entry, fut))
    return asyncio.wait_for(fut, 15)


class Client(slixmpp.ClientXMPP):
    def __init__(self, name, jid):
        super().__init__(jid, password)
        self.name = name
        self.register_plugin("xep_0280")
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.started.set_result(True))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("carbon_received", lambda m: note(self.name, "received:" + m["carbon_received"]["body"]))
        self.add_event_handler("carbon_sent", lambda m: note(self.name, "sent:%s>%s" % (m["carbon_sent"]["body"], m["carbon_sent"]["to"].bare)))

    def on_message(self, msg):
        # carbons arrive as messages too; slixmpp's plugin raises their own events for them
        if any(msg.xml.find("{urn:xmpp:carbons:2}" + k) is not None for k in ("received", "sent")):
            return
        if msg["type"] in ("chat", "normal") and msg["body"]:
            note(self.name, "msg:" + msg["body"])


async def connect(c):
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(c.started, 30)


async def main():
    phone = Client("phone", f"{bob}@{domain}/phone")
    laptop = Client("laptop", f"{bob}@{domain}/laptop")
    al = Client("alice", f"{alice}@{domain}/pc")
    for c in (phone, laptop, al):
        await connect(c)
    await phone.plugin["xep_0280"].enable()
    await laptop.plugin["xep_0280"].enable()
    # Available, with the phone first by priority; each waits for its own presence to come back.
    for c, prio in ((phone, 1), (laptop, 0), (al, 0)):
        back = asyncio.get_event_loop().create_future()
        handler = lambda p, b=back, me=c: (not b.done() and p["from"] == me.boundjid) and b.set_result(True)
        c.add_event_handler("presence_available", handler)
        c.send_presence(ppriority=prio)
        await asyncio.wait_for(back, 15)
        c.del_event_handler("presence_available", handler)

    bare = f"{bob}@{domain}"
    al.send_message(mto=bare, mbody="m1", mtype="chat")
    await expect("phone", "msg:m1")
    await expect("laptop", "received:m1")

    phone.send_message(mto=al.boundjid.bare, mbody="m2", mtype="chat")
    await expect("alice", "msg:m2")
    await expect("laptop", "sent:m2>" + al.boundjid.bare)

    private = phone.make_message(mto=al.boundjid.bare, mbody="m3", mtype="chat")
    private.append(PrivateCarbon())
    private.send()
    phone.send_message(mto=al.boundjid.bare, mbody="m4", mtype="chat")
    await expect("alice", "msg:m4")
    await expect("laptop", "sent:m4>" + al.boundjid.bare)

    await laptop.plugin["xep_0280"].disable()
    al.send_message(mto=f"{bare}/phone", mbody="m5", mtype="chat")
    await expect("phone", "msg:m5")
    phone.send_message(mto=al.boundjid.bare, mbody="m6", mtype="chat")
    await expect("alice", "msg:m6")
    await laptop.plugin["xep_0280"].enable()
    al.send_message(mto=bare, mbody="m7", mtype="chat")
    await expect("phone", "msg:m7")
    await expect("laptop", "received:m7")

    for c in (phone, laptop, al):
        c.disconnect()
    await asyncio.sleep(0.2)


try:
    asyncio.get_event_loop().run_until_complete(main())
    print(json.dumps(seen), flush=True)
except Exception as e:  # noqa: BLE001 -- reported to the test as data
    print(json.dumps({"error": repr(e), **seen}), flush=True)
