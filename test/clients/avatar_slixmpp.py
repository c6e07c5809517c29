#!/usr/bin/env python3
"""Avatars kept in step by the server (XEP-0398), with slixmpp's own plugins: alice's client
publishes an avatar over PEP (xep_0084: data, then metadata) and says nothing of vCards; bob reads
alice's vCard (xep_0054) and finds the image as its PHOTO, and alice's next presence reaches him with
the image's hash (vcard-temp:x:update, XEP-0153), put there by the server. Prints one JSON line."""
import asyncio, base64, hashlib, sys
from slixmpp_common import Client as Base, connect as login, run

host, port, domain, password = sys.argv[1:5]
IMAGE = bytes(range(256)) * 8  # 2 KiB standing in for a PNG
out = {}


class Client(Base):
    def __init__(self, jid, plugins):
        super().__init__(jid, password, ("xep_0030", "xep_0060", "xep_0163", *plugins))
        self.photos = asyncio.Queue()
        self.add_event_handler("presence_available", self.noted)

    def noted(self, p):
        if str(p["from"]).startswith(f"alice@{domain}"):
            photo = p.xml.find("{vcard-temp:x:update}x/{vcard-temp:x:update}photo")
            self.photos.put_nowait(None if photo is None else (photo.text or ""))


async def main():
    alice, bob = Client(f"alice@{domain}/phone", ("xep_0084",)), Client(f"bob@{domain}/pc", ("xep_0054",))
    for c in (bob, alice):
        await login(c, host, port, presence=False)
    bob.send_presence()
    digest = hashlib.sha1(IMAGE).hexdigest()
    await alice["xep_0084"].publish_avatar(IMAGE)
    await alice["xep_0084"].publish_avatar_metadata([{"id": digest, "type": "image/png", "bytes": len(IMAGE)}])
    vcard = (await bob["xep_0054"].get_vcard(f"alice@{domain}"))["vcard_temp"]
    out["vcard_photo_is_the_image"] = base64.b64decode(vcard["PHOTO"]["BINVAL"]) == IMAGE if isinstance(vcard["PHOTO"]["BINVAL"], str) else vcard["PHOTO"]["BINVAL"] == IMAGE
    out["vcard_photo_type"] = vcard["PHOTO"]["TYPE"]
    alice.send_presence(pstatus="here")
    out["presence_photo_is_the_hash"] = (await asyncio.wait_for(bob.photos.get(), 20)) == digest
    for c in (alice, bob):
        c.disconnect()


run(main, out, 90)
