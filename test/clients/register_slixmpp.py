#!/usr/bin/env python3
"""In-band registration (XEP-0077) with slixmpp's own xep_0077 plugin, as a new user's client does:
it sees the register stream feature, asks for the form, registers USER with PASSWORD, then logs in
with the new account on the same stream and sends itself a message. With TOKEN, the invitation
(XEP-0445) goes first: <preauth/> before the form, as clients that open an invitation link do.
Prints one JSON line: what it saw, or the error.

  usage: register_slixmpp.py HOST PORT DOMAIN USER PASSWORD [TOKEN]"""
import asyncio, sys
from xml.etree import ElementTree as ET
from slixmpp.exceptions import IqError
from slixmpp_common import Client, connect, run

host, port, domain, user, password = sys.argv[1:6]
token = sys.argv[6] if len(sys.argv) > 6 else None
out = {}


async def main():
    c = Client(f"{user}@{domain}/reg", password, ("xep_0004", "xep_0066", "xep_0077"))
    # slixmpp 1.8.3 holds back every IQ but bind and session until the session starts, its own
    # xep_0077 requests included (they would wait for ever): let them out.
    c._always_send_everything = True
    failed = asyncio.get_event_loop().create_future()
    plugin = c.plugin["xep_0077"]
    form = plugin.get_registration

    async def with_token(*a, **k):
        if token:
            iq = c.Iq()
            iq["type"] = "set"
            iq.append(ET.fromstring(f"<preauth xmlns='urn:xmpp:pars:0' token='{token}'/>"))
            try:
                await iq.send()
                out["token"] = "accepted"
            except IqError as e:
                out["token"] = e.iq["error"]["condition"]
        return await form(*a, **k)

    plugin.get_registration = with_token

    async def register(got):
        out["fields"] = [f for f in ("username", "password") if got["register"].xml.find("{jabber:iq:register}" + f) is not None]
        iq = c.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = user
        iq["register"]["password"] = password
        try:
            await iq.send()
            out["registered"] = True
        except IqError as e:
            out["registered"] = e.iq["error"]["condition"]
            failed.set_result(True)
            c.disconnect()

    c.add_event_handler("register", register)
    got = asyncio.get_event_loop().create_future()
    c.add_event_handler("message", lambda m: got.done() or got.set_result(m["body"]))

    async def form_refused(*a, **k):
        try:
            return await with_token(*a, **k)
        except IqError as e:
            out["form"] = e.iq["error"]["condition"]
            failed.set_result(True)
            c.disconnect()
            raise

    plugin.get_registration = form_refused
    session = asyncio.ensure_future(connect(c, host, port))
    done, _ = await asyncio.wait([session, failed], return_when=asyncio.FIRST_COMPLETED, timeout=40)
    if session in done:
        out["logged_in"] = str(c.boundjid.bare)
        c.send_message(mto=c.boundjid.bare, mbody="hello me", mtype="chat")
        out["message"] = await asyncio.wait_for(got, 10)
        c.disconnect()
    else:
        session.cancel()


run(main, out, 60)
