#!/usr/bin/env python3
"""A python3-nbxmpp client (Gajim's library) with its defaults: logs in over STARTTLS or Direct TLS,
fetches the roster, sends presence, sends a message to PEER and waits for one back, then prints one
JSON line with what it saw. Only the self-signed test certificate is accepted (set_ignore_tls_errors,
what Gajim does when the user accepts a certificate).
With RESUME: then prints {"phase": "cut-me"}; when the test has cut its connection it connects again,
as Gajim does, and must resume the stream (XEP-0198) and get the message sent meanwhile.
Usage: nbxmpp_client.py JID PASSWORD HOST PORT starttls|direct PEER [resume]"""
import json, sys
from gi.repository import GLib
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import JID, Iq, Message, Presence
from nbxmpp.structs import StanzaHandler

jid, password, host, port, mode, peer = sys.argv[1:7]
resume = sys.argv[7:8] == ["resume"]
result = {"login": False, "mechanism": None, "roster": False, "message_in": False, "error": None}
if resume:
    result.update(resumed=False, while_away=False)
phase = {"cut": False}
loop = GLib.MainLoop()
me = JID.from_string(jid)

client = Client()
client.set_domain(me.domain)
client.set_username(me.localpart)
client.set_resource(me.resource)
client.set_password(password)
client.set_custom_host(f"{host}:{port}", ConnectionProtocol.TCP,
                       ConnectionType.DIRECT_TLS if mode == "direct" else ConnectionType.START_TLS)
client.set_ignore_tls_errors(True)


def finish(error=None):
    if error and not result["error"]:
        result["error"] = error
    if loop.is_running():
        loop.quit()


def on_connected(_client, _signal):
    result["login"] = True
    mech = getattr(client._sasl, "_mechanism", None)  # nbxmpp keeps the chosen mechanism there
    result["mechanism"] = getattr(mech, "name", None)
    client.send_stanza(Iq(typ="get", queryNS=Namespace.ROSTER), callback=on_roster)


def on_roster(_client, stanza, *_):
    result["roster"] = stanza.getType() == "result"
    client.send_stanza(Presence())
    client.send_stanza(Message(to=peer, body="hello from nbxmpp", typ="chat"))


def on_message(_client, stanza, *_):
    if stanza.getBody() == "hello back":
        result["message_in"] = True
        if not resume:
            finish()
            return
        phase["cut"] = True
        print(json.dumps({"phase": "cut-me"}), flush=True)
    elif stanza.getBody() == "while away" and resume:
        result["while_away"] = True
        finish()


def on_disconnected(*_):
    if phase["cut"] and not result["resumed"]:
        GLib.idle_add(lambda: client.connect() and False)  # Gajim reconnects; nbxmpp resumes
        return
    finish("disconnected before the reply")


def on_resumed(*_):
    result["resumed"] = True


client.subscribe("connected", on_connected)
client.subscribe("resume-successful", on_resumed)
client.subscribe("connection-failed", lambda *_: finish("connection-failed"))
client.subscribe("disconnected", on_disconnected)
client.register_handler(StanzaHandler(name="message", callback=on_message))
GLib.timeout_add_seconds(80 if resume else 40, lambda: finish("timed out"))
client.connect()
loop.run()
print(json.dumps(result), flush=True)
