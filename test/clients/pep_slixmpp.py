#!/usr/bin/env python3
"""PEP (XEP-0163) as OMEMO (XEP-0384) uses it, with slixmpp's own plugins (xep_0060, xep_0163, and
xep_0115 for the caps that say "+notify"): alice on a phone and a laptop, bob a contact of hers.
Prints one JSON line: what each step showed, or an error.

  all three want the OMEMO device list (+notify in their caps) and go online
  the phone publishes alice's device list (access model open): the laptop and bob are notified
  the phone publishes a bundle: nobody is notified (nobody asked), bob fetches it
  bob publishes his own device list: alice's two clients are notified
  alice keeps bookmarks in private XML (XEP-0049, as XEP-0048 did) from the phone, reads them on the laptop"""
import asyncio, sys
import xml.etree.ElementTree as ET
import slixmpp
from slixmpp_common import Client as Base, connect as login, run

host, port, domain, password = sys.argv[1:5]
OMEMO = "eu.siacs.conversations.axolotl"
DEVICES = OMEMO + ".devicelist"
BUNDLE = OMEMO + ".bundles:1"
out = {}


class Client(Base):
    def __init__(self, jid):
        super().__init__(jid, password, ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0049", "xep_0048"))
        self.events = asyncio.Queue()
        self.nodes = []  # the node of every event, in order
        self.add_event_handler("pubsub_publish", self.on_event)

    def on_event(self, m):
        self.nodes.append(m["pubsub_event"]["items"]["node"])
        self.events.put_nowait(m)

    async def next_event(self, node, publisher):
        while True:
            m = await asyncio.wait_for(self.events.get(), 15)
            if m["pubsub_event"]["items"]["node"] == node and m["from"].bare == publisher:
                return m


def devices(m):
    item = m["pubsub_event"]["items"]["item"]
    return [d.get("id") for d in item.xml.iter("{%s}device" % OMEMO)]


async def connect(c):
    await login(c, host, port, presence=False)
    c.plugin["xep_0163"].add_interest(DEVICES)
    await c.plugin["xep_0115"].update_caps()
    c.send_presence()


def open_access(c):
    form = c.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    form.add_field(var="pubsub#access_model", value="open")
    return form


async def main():
    phone, laptop, bob = Client(f"alice@{domain}/phone"), Client(f"alice@{domain}/laptop"), Client(f"bob@{domain}/pc")
    for c in (phone, laptop, bob):
        await connect(c)
    await asyncio.sleep(1)  # the caps are asked for and learned

    devicelist = ET.fromstring(f"<list xmlns='{OMEMO}'><device id='1111'/><device id='2222'/></list>")
    await phone.plugin["xep_0060"].publish(None, DEVICES, id="current", payload=devicelist, options=open_access(phone))
    alice, bobs = f"alice@{domain}", f"bob@{domain}"
    out["laptop_devices"] = devices(await laptop.next_event(DEVICES, alice))
    out["bob_devices"] = devices(await bob.next_event(DEVICES, alice))

    bundle = ET.fromstring(f"<bundle xmlns='{OMEMO}'><signedPreKeyPublic signedPreKeyId='1'>AAAA</signedPreKeyPublic></bundle>")
    await phone.plugin["xep_0060"].publish(None, BUNDLE, id="current", payload=bundle, options=open_access(phone))
    got = await bob.plugin["xep_0060"].get_items(slixmpp.JID(f"alice@{domain}"), BUNDLE)
    out["bob_fetched"] = [i.xml.find(f"{{{OMEMO}}}bundle/{{{OMEMO}}}signedPreKeyPublic").text for i in got["pubsub"]["items"]]

    mine = ET.fromstring(f"<list xmlns='{OMEMO}'><device id='3333'/></list>")
    await bob.plugin["xep_0060"].publish(None, DEVICES, id="current", payload=mine, options=open_access(bob))
    out["phone_sees_bob"] = devices(await phone.next_event(DEVICES, bobs))
    out["laptop_sees_bob"] = devices(await laptop.next_event(DEVICES, bobs))
    out["bundle_events"] = sum(n == BUNDLE for c in (phone, laptop, bob) for n in c.nodes)

    from slixmpp.plugins.xep_0048.stanza import Bookmarks
    marks = Bookmarks()
    marks.add_conference(f"family@conference.{domain}", "Alice", name="Family", autojoin=True)
    await phone.plugin["xep_0048"].set_bookmarks(marks, method="xep_0049")
    back = await laptop.plugin["xep_0048"].get_bookmarks(method="xep_0049")
    out["private"] = [[str(c["jid"]), c["nick"], c["name"]] for c in back["private"]["bookmarks"]["conferences"]]

    for c in (phone, laptop, bob):
        c.disconnect()


run(main, out)
