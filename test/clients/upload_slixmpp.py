#!/usr/bin/env python3
"""HTTP File Upload (XEP-0363) with slixmpp's own plugin, as a client shares a file: alice finds the
upload service (disco#items of her server, then disco#info: identity store/file), learns the size
limit from its XEP-0128 form, asks for a slot, PUTs the file over HTTP with the slot's header, and
sends bob the URL; bob downloads it. Prints one JSON line: the URL, what bob got (its size, its
content type, whether the bytes are the same), the size limit read from disco, or an error.
The discovery is done here with slixmpp's disco calls as the plugin's would: its own helper
(get_info_from_domain) passes coroutines to asyncio.wait, which Python 3.11 refuses."""
import asyncio, hashlib, os, sys
import aiohttp
from slixmpp_common import Client, connect, run

host, port, domain, password = sys.argv[1:5]
out = {}
DATA = os.urandom(40_000) + b"the end"


async def scenario():
    alice = Client(f"alice@{domain}/phone", password, ("xep_0030", "xep_0004", "xep_0128", "xep_0363"))
    bob = Client(f"bob@{domain}/laptop", password)
    got = asyncio.get_event_loop().create_future()
    bob.add_event_handler("message", lambda m: got.done() or m["body"] and got.set_result(m["body"]))
    await connect(alice, host, port)
    await connect(bob, host, port)
    path = "/tmp/chorus-upload-%d.bin" % os.getpid()
    with open(path, "wb") as f:
        f.write(DATA)
    disco = alice["xep_0030"]
    items = await disco.get_items(jid=domain, timeout=10)
    for item in items["disco_items"]["items"]:
        info = await disco.get_info(jid=item[0], timeout=10)
        if ("store", "file") in [(i[0], i[1]) for i in info["disco_info"]["identities"]] and "urn:xmpp:http:upload:0" in info["disco_info"]["features"]:
            alice["xep_0363"].upload_service = info["from"]
            for form in info["disco_info"].iterables:
                values = form["values"]
                if values.get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
                    alice["xep_0363"].max_file_size = int(values["max-file-size"])
    try:
        url = await alice["xep_0363"].upload_file(path, content_type="application/x-test", timeout=30)
    finally:
        os.unlink(path)
    out["url"] = url
    out["max"] = alice["xep_0363"].max_file_size
    alice.send_message(mto=f"bob@{domain}", mbody=url, mtype="chat")
    link = await asyncio.wait_for(got, 15)
    async with aiohttp.ClientSession() as s:
        async with s.get(link) as r:
            body = await r.read()
            out["status"] = r.status
            out["type"] = r.headers.get("Content-Type")
            out["size"] = len(body)
            out["same"] = hashlib.sha256(body).digest() == hashlib.sha256(DATA).digest()
    alice.disconnect()
    bob.disconnect()


run(scenario, out)
