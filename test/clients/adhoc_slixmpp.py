#!/usr/bin/env python3
"""Server administration (XEP-0133) over ad-hoc commands (XEP-0050), with slixmpp's own xep_0050
plugin: the admin lists the server's commands, adds carol (who then logs in), changes her password
(the new one works, the old one no longer), lists who is online, announces to everyone online (bob
gets it), and deletes carol (her login then fails). bob, no admin, is listed no admin command and is
refused one. Prints one JSON line: what each step showed, or an error."""
import asyncio, sys
import slixmpp
from slixmpp_common import Client as Base, connect as login, run

host, port, domain, password = sys.argv[1:5]
ADMIN = "http://jabber.org/protocol/admin#"
out = {}


class Client(Base):
    def __init__(self, jid, pw=password):
        super().__init__(jid, pw, ("xep_0004", "xep_0030", "xep_0050"))
        self.failed = asyncio.get_event_loop().create_future()
        self.add_event_handler("failed_all_auth", lambda _: self.failed.done() or self.failed.set_result(True))
        self.headlines = asyncio.Queue()
        self.add_event_handler("message", lambda m: m["type"] == "headline" and self.headlines.put_nowait(m))


async def can_login(jid, pw):
    """True if the account logs in with this password, False if the server refuses it."""
    c = Client(jid, pw)
    c.connect((host, int(port)), force_starttls=True)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = __import__("ssl").CERT_NONE
    done, _ = await asyncio.wait([c.started, c.failed], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    ok = c.started in done
    c.disconnect()
    return ok


async def command(c, name, fields):
    """execute, then complete with the filled form: the completed <command/>."""
    node = ADMIN + name
    first = (await c["xep_0050"].send_command(domain, node))["command"]
    if first["status"] == "completed":
        return first
    form = c["xep_0004"].make_form(ftype="submit")
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return (await c["xep_0050"].send_command(domain, node, action="complete", payload=form, sessionid=first["sessionid"]))["command"]


def note(cmd):
    n = cmd.xml.find("{http://jabber.org/protocol/commands}note")
    return None if n is None else [n.get("type"), n.text]


def values(cmd, var):
    return cmd["form"].get_values()[var]


async def main():
    admin, bob = Client(f"admin@{domain}/desk"), Client(f"bob@{domain}/pc")
    for c in (admin, bob):
        await login(c, host, port)
    items = await admin["xep_0050"].get_commands(domain)
    out["admin_commands"] = sorted(i[1].replace(ADMIN, "") for i in items["disco_items"]["items"])
    out["bob_commands"] = [i[1] for i in (await bob["xep_0050"].get_commands(domain))["disco_items"]["items"]]
    try:
        await bob["xep_0050"].send_command(domain, ADMIN + "add-user")
        out["bob_refused"] = None
    except slixmpp.exceptions.IqError as e:
        out["bob_refused"] = e.iq["error"]["condition"]

    out["add"] = note(await command(admin, "add-user", {"accountjid": f"carol@{domain}", "password": "first", "password-verify": "first"}))
    out["carol_logs_in"] = await can_login(f"carol@{domain}/phone", "first")
    out["add_again"] = note(await command(admin, "add-user", {"accountjid": f"carol@{domain}", "password": "x", "password-verify": "x"}))
    out["passwd"] = note(await command(admin, "change-user-password", {"accountjid": f"carol@{domain}", "password": "second"}))
    out["carol_new_password"] = await can_login(f"carol@{domain}/phone", "second")
    out["carol_old_password"] = await can_login(f"carol@{domain}/phone", "first")
    out["online"] = values(await command(admin, "get-online-users-list", {"max_items": "all"}), "onlineuserjids")
    out["registered"] = values(await command(admin, "get-registered-users-num", {}), "registeredusersnum")

    out["announce"] = note(await command(admin, "announce", {"subject": "Maintenance", "announcement": "Back at noon"}))
    m = await asyncio.wait_for(bob.headlines.get(), 30)
    out["bob_got"] = [str(m["from"]), m["subject"], m["body"]]

    out["delete"] = note(await command(admin, "delete-user", {"accountjids": [f"carol@{domain}"]}))
    out["carol_after_delete"] = await can_login(f"carol@{domain}/phone", "second")
    for c in (admin, bob):
        c.disconnect()


run(main, out, 150)
