"""Connection behaviour of the SDK against a real gateway.

Run by gateway/tests/it/sdk/behaviour.rs with GW_URL, GW_SECRET (the gateway's
HS256 secret: this script mints its tokens), GW_SUB and SCENARIOS: "main"
(token_refresh, heartbeat, queue_bounded, cancel_before_accepted; a gateway with
jwt leeway 0) or "abuse" (reconnect_after_4429; user_rate 2/2,
rate_limit_close_after 3, abuse_cooldown 2 s). A TCP proxy in this script
stands between the client and the gateway where the network must misbehave:
refusing, or silently swallowing everything (a dead socket that never closes).
Prints "ok <scenario> <ms>ms" for each scenario that passed; exits non-zero on
the first failure.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import math
import os
import time
from urllib.parse import urlparse

from bullmq_wire_client import Client, ErrorCode, RpcError

GW_URL = os.environ["GW_URL"]
SECRET = os.environ["GW_SECRET"].encode()
SUB = os.environ["GW_SUB"]
WHICH = os.environ.get("SCENARIOS", "main")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secs: int) -> str:
    """An HS256 token for GW_SUB expiring in ``secs``."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": SUB, "exp": int(time.time()) + secs}).encode())
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


class Proxy:
    """A TCP proxy to the gateway: mode "forward", "refuse" or "freeze"."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.writers: list = []
        self.server = None
        self.url = ""

    async def start(self) -> "Proxy":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def _handle(self, reader, writer) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        gw = urlparse(GW_URL)
        up_reader, up_writer = await asyncio.open_connection(gw.hostname, gw.port)
        self.writers += [writer, up_writer]

        async def pipe(src, dst) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    if self.mode != "freeze":
                        dst.write(data)
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        for w in self.writers:
            w.close()
        self.server.close()


async def wait_for(what: str, cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def scenario(name: str, coro) -> None:
    started = time.monotonic()
    await coro
    print(f"ok {name} {int((time.monotonic() - started) * 1000)}ms", flush=True)


def events(c: Client):
    opens, closes, attempts = [], [], []
    c.on("open", lambda e: opens.append((time.monotonic(), e["url"])))
    c.on("close", lambda e: closes.append(dict(e, at=time.monotonic())))
    c.on("reconnecting", attempts.append)
    return opens, closes, attempts


async def token_refresh() -> None:
    # tokens live 3 s and the gateway has no leeway: without rpc.auth the
    # socket would be closed with 4401 at expiry and reopened
    minted = []

    def token() -> str:
        minted.append(1)
        return mint(3)

    async with Client(GW_URL, token=token) as c:
        opens, closes, _ = events(c)
        assert await c.call("demo.sleep", {"ms": 5000, "steps": 5}) == {"slept": 5000}
        assert await c.call("demo.echo", {"after": "refresh"}) == {"after": "refresh"}
        assert len(opens) == 1, (opens, closes)
        assert closes == [], closes
        assert len(minted) >= 3, f"token function called {len(minted)} times"


async def heartbeat() -> None:
    # the socket through the proxy goes silent without closing; websockets'
    # keepalive ping notices within interval + timeout, and the call ends via the other URL
    p = await Proxy("forward").start()
    interval = timeout = 0.3
    c = Client([p.url, GW_URL], token=mint(600), heartbeat_interval=interval,
               heartbeat_timeout=timeout, backoff_initial=0.02, backoff_max=0.1)
    opens, closes, _ = events(c)
    try:
        c.start()
        progressed = []
        call = asyncio.create_task(c.call("demo.sleep", {"ms": 2500, "steps": 10},
                                          on_progress=lambda p_, j: progressed.append(p_)))
        await wait_for("progress", lambda: progressed)
        p.mode = "freeze"
        frozen_at = time.monotonic()
        await wait_for("the dead socket to be noticed", lambda: closes, 5.0)
        noticed = closes[0]["at"] - frozen_at
        # a ping goes out every `interval`; no pong within `timeout` fails the
        # socket, whose close handshake gets at most `timeout` more
        assert noticed <= interval + 2 * timeout + 0.5, f"noticed after {noticed:.3f} s"
        assert await call == {"slept": 2500}
        assert [u for _, u in opens] == [p.url, GW_URL], opens
    finally:
        await c.close()
        p.close()


async def queue_bounded() -> None:
    # no connection: calls wait in the queue up to queue_limit; more fail at once
    p = await Proxy("refuse").start()
    c = Client(p.url, token=mint(600), queue_limit=3, backoff_initial=0.02, backoff_max=0.1)
    opens, _, _ = events(c)
    try:
        waiting = [asyncio.create_task(c.call("demo.echo", {"n": n})) for n in (1, 2, 3)]
        await asyncio.sleep(0)  # the three register
        started = time.monotonic()
        try:
            await c.call("demo.echo", {"n": 4})
            raise AssertionError("the call over the limit was accepted")
        except RpcError as e:
            assert e.code == ErrorCode.QUEUE_FULL == -32090, e.code
        assert time.monotonic() - started < 1.0, "the overflow fails at once"
        assert opens == [] and c.pending_count == 3, (opens, c.pending_count)
        p.mode = "forward"
        assert await asyncio.gather(*waiting) == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert len(opens) == 1
    finally:
        await c.close()
        p.close()


async def cancel_before_accepted() -> None:
    # the awaiting task is cancelled after the call was sent but before
    # rpc.accepted named its job: the job (delayed 60 s) must still be removed
    owner = hashlib.sha1(SUB.encode()).hexdigest()[:20]
    key = f"cancel-early-{int(time.time() * 1000)}"
    job_id = f"demo.{owner}.{key}"
    async with Client(GW_URL, token=mint(600)) as c:
        opens, _, _ = events(c)
        await wait_for("the open", lambda: opens)
        # the gateway's job id is <service>.<owner>.<key> (gateway/src/ids.rs)
        probe: list = []
        await c.call("demo.echo", {}, job_id=f"{key}-probe", on_accepted=probe.append)
        assert probe == [f"demo.{owner}.{key}-probe"], (probe, owner)
        accepted = []
        task = asyncio.create_task(
            c.call("demo.echo", {"early": True}, job_id=key, options={"delay": 60_000},
                   on_accepted=accepted.append)
        )
        await asyncio.sleep(0)  # the call is registered and handed to the socket
        assert c.pending_count == 1
        task.cancel()
        try:
            await task
            raise AssertionError("the cancelled call returned")
        except asyncio.CancelledError:
            pass
        assert accepted == [] and c.pending_count == 0, accepted
        # the frame had gone out, so the gateway enqueues the job; the client
        # cancels it when rpc.accepted names it. A status request may overtake
        # the enqueue, so the job must be gone for good: absent in every poll
        # over half a second, a second or more after the cancel (left alone it
        # would stay delayed for 60 s)
        cancelled_at = time.monotonic()
        states: list = []
        absent_since = None
        deadline = cancelled_at + 10
        while time.monotonic() < deadline:
            try:
                states.append((await c.status(job_id))["state"])
                absent_since = None
            except RpcError as e:
                if e.code != ErrorCode.JOB_NOT_FOUND:
                    raise
                now = time.monotonic()
                absent_since = absent_since or now
                if now - cancelled_at >= 1.0 and now - absent_since >= 0.5:
                    assert c.pending_count == 0
                    return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the job cancelled before acceptance stayed: {states[-3:]}")


async def reconnect_after_4429() -> None:
    backoff_max, cooldown = 0.5, 2.0
    async with Client(GW_URL, token=mint(600), backoff_initial=0.02, backoff_max=backoff_max) as c:
        opens, closes, attempts = events(c)
        await wait_for("the first open", lambda: opens)
        # user_rate 2/2: two go through, the rest are refused, and the third
        # refusal in a row closes with 4429; the refused calls are resent and,
        # after the cool-down, every call ends with its result
        batch = asyncio.create_task(c.batch([{"method": "demo.echo", "params": {"n": n}} for n in range(1, 7)]))
        await wait_for("the 4429 close", lambda: closes)
        assert closes[0]["code"] == 4429 and closes[0]["reconnect"], closes
        results = await asyncio.wait_for(batch, 15)
        assert results == [{"n": n} for n in range(1, 7)], results
        state = (opens, closes, attempts)
        assert len(opens) == 2, state
        assert sum(1 for x in closes if x["code"] == 4429) == 1, state
        away = opens[1][0] - closes[0]["at"]
        assert away >= cooldown - 0.3, f"reopened after {away:.3f} s, inside the cooldown"
        assert away <= cooldown + backoff_max + 1.5, f"reopened only after {away:.3f} s"
        # Retry-After (whole seconds) is honoured: a handful of attempts, no spinning
        limit = math.ceil(cooldown) + 2
        assert len(attempts) <= limit, f"{len(attempts)} attempts in the cooldown: {attempts}"
        assert await c.call("demo.echo", {"back": True}) == {"back": True}
        assert len(opens) == 2, state


async def main() -> None:
    if WHICH == "main":
        await scenario("token_refresh", token_refresh())
        await scenario("heartbeat", heartbeat())
        await scenario("queue_bounded", queue_bounded())
        await scenario("cancel_before_accepted", cancel_before_accepted())
    elif WHICH == "abuse":
        await scenario("reconnect_after_4429", reconnect_after_4429())


asyncio.run(main())
