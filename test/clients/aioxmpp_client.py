#!/usr/bin/env python3
"""An aioxmpp client with the library's defaults (its security layer picks the mechanism): logs in over
STARTTLS or Direct TLS, fetches the roster, sends presence, sends a message to PEER and waits for
one back, then prints one JSON line with what it saw. Only certificate verification is off
(no_verify, aioxmpp's switch for a self-signed certificate).
With RESUME: then prints {"phase": "cut-me"}, and once the test has cut its connection it must resume
the stream (XEP-0198, which aioxmpp negotiates by default) and get the message sent meanwhile.
Usage: aioxmpp_client.py JID PASSWORD HOST PORT starttls|direct PEER [resume]"""
import asyncio, json, sys
import aiosasl, aioxmpp, aioxmpp.connector, aioxmpp.dispatcher, aioxmpp.roster.xso

jid, password, host, port, mode, peer = sys.argv[1:7]
resume = sys.argv[7:8] == ["resume"]
result = {"login": False, "mechanism": None, "roster": False, "message_in": False, "error": None}
if resume:
    result.update(resumed=False, while_away=False)

# The mechanism aioxmpp's SASL state machine starts, recorded on its way.
_initiate = aiosasl.SASLStateMachine.initiate
def initiate(self, mechanism, payload=None):
    result["mechanism"] = mechanism
    return _initiate(self, mechanism, payload)
aiosasl.SASLStateMachine.initiate = initiate


async def main():
    connector = aioxmpp.connector.XMPPOverTLSConnector() if mode == "direct" else aioxmpp.connector.STARTTLSConnector()
    client = aioxmpp.Client(
        aioxmpp.JID.fromstr(jid),
        aioxmpp.make_security_layer(password, no_verify=True),
        override_peer=[(host, int(port), connector)],
    )
    loop = asyncio.get_event_loop()
    got, away, resumed = loop.create_future(), loop.create_future(), loop.create_future()

    def on_message(msg):
        for text, fut in (("hello back", got), ("while away", away)):
            if any(v == text for v in msg.body.values()) and not fut.done():
                fut.set_result(True)

    client.on_stream_resumed.connect(lambda: resumed.done() or resumed.set_result(True))

    client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher).register_callback(aioxmpp.MessageType.CHAT, None, on_message)
    async with client.connected(presence=aioxmpp.PresenceState(True)):
        result["login"] = True
        await client.send(aioxmpp.IQ(type_=aioxmpp.IQType.GET, payload=aioxmpp.roster.xso.Query()))
        result["roster"] = True
        msg = aioxmpp.Message(to=aioxmpp.JID.fromstr(peer), type_=aioxmpp.MessageType.CHAT)
        msg.body[None] = "hello from aioxmpp"
        await client.send(msg)
        result["message_in"] = await asyncio.wait_for(got, 30)
        if resume:
            print(json.dumps({"phase": "cut-me"}), flush=True)
            result["resumed"] = await asyncio.wait_for(resumed, 30)
            result["while_away"] = await asyncio.wait_for(away, 30)


try:
    asyncio.run(asyncio.wait_for(main(), 80 if resume else 40))
except Exception as e:  # the row says what went wrong
    result["error"] = result["error"] or f"{type(e).__name__}: {e}"
print(json.dumps(result), flush=True)
