#!/usr/bin/env python3
"""A python3-nbxmpp client (Gajim's library) with its defaults: logs in over STARTTLS or Direct TLS,
fetches the roster, sends presence, sends a message to PEER and waits for one back, then prints one
JSON line with what it saw. Only the self-signed test certificate is accepted (set_ignore_tls_errors,
what Gajim does when the user accepts a certificate).
Usage: nbxmpp_client.py JID PASSWORD HOST PORT starttls|direct PEER"""
import json, sys
from gi.repository import GLib
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import JID, Iq, Message, Presence
from nbxmpp.structs import StanzaHandler

jid, password, host, port, mode, peer = sys.argv[1:7]
result = {"login": False, "mechanism": None, "roster": False, "message_in": False, "error": None}
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
        finish()


client.subscribe("connected", on_connected)
client.subscribe("connection-failed", lambda *_: finish("connection-failed"))
client.subscribe("disconnected", lambda *_: finish("disconnected before the reply"))
client.register_handler(StanzaHandler(name="message", callback=on_message))
GLib.timeout_add_seconds(40, lambda: finish("timed out"))
client.connect()
loop.run()
print(json.dumps(result), flush=True)
