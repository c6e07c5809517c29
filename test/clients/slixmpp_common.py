"""What the slixmpp scripts of the client tests share: a client that says when its session started,
logging in over STARTTLS to the test node (its certificate is self-signed), and running a scenario
with one JSON line as the result (what it saw, or the error)."""
import asyncio, json, ssl, traceback
import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, plugins=()):
        super().__init__(jid, password)
        for p in plugins:
            self.register_plugin(p)
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.started.done() or self.started.set_result(True))


async def connect(c, host, port, presence=True):
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(c.started, 30)
    if presence:
        c.send_presence()


def run(scenario, out, seconds=120):
    """Runs the coroutine function `scenario`; prints `out` as one JSON line, with the error if any."""
    try:
        asyncio.get_event_loop().run_until_complete(asyncio.wait_for(scenario(), seconds))
    except Exception as e:  # noqa: BLE001 - reported to the test
        out["error"] = f"{type(e).__name__}: {e} {traceback.format_exc()[-600:]}"
    print(json.dumps(out))
