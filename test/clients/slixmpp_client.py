#!/usr/bin/env python3
"""A slixmpp client with the library's defaults (mechanism and channel-binding choice included):
logs in over STARTTLS or Direct TLS, fetches the roster, sends presence, sends a message to PEER and
waits for one back, then prints one JSON line with what it saw. Only the self-signed test certificate
is accepted, the way slixmpp lets an application do it."""
import asyncio, json, ssl, sys
import slixmpp, logging, os
if os.environ.get("SLIX_DEBUG"): logging.basicConfig(level=logging.DEBUG)

jid, password, host, port, mode, peer = sys.argv[1:7]
result = {"login": False, "mechanism": None, "roster": False, "message_in": False, "error": None}


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(jid, password)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.message)
        self.add_event_handler("no_auth", lambda *_: self.fail("no_auth: every mechanism failed"))
        self.add_event_handler("connection_failed", lambda e: self.fail(f"connection_failed: {e}"))
        self.done = asyncio.get_event_loop().create_future()

    def fail(self, why):
        result["error"] = result["error"] or why
        if not self.done.done():
            self.done.set_result(None)

    async def start(self, _):
        result["login"] = True
        mech = getattr(self.plugin["feature_mechanisms"], "mech", None)
        result["mechanism"] = getattr(mech, "name", None)
        await self.get_roster()
        result["roster"] = True
        self.send_presence()
        self.send_message(mto=peer, mbody="hello from slixmpp", mtype="chat")

    def message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"] == "hello back":
            result["message_in"] = True
            if not self.done.done():
                self.done.set_result(None)


async def main():
    c = Client()
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    # Direct TLS (XEP-0368) is slixmpp's use_ssl; STARTTLS is its default.
    c.connect((host, int(port)), use_ssl=(mode == "direct"), force_starttls=(mode != "direct"))
    try:
        await asyncio.wait_for(c.done, 30)
    except asyncio.TimeoutError:
        result["error"] = result["error"] or "timed out"
    c.disconnect()
    await asyncio.sleep(0.2)


asyncio.get_event_loop().run_until_complete(main())
print(json.dumps(result), flush=True)
