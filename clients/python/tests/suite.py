"""The SDK against a real gateway with the `demo` worker of gateway/tests/it/support.

Run by gateway/tests/it/sdk/python.rs with GW_URL and GW_TOKEN set. Prints
"ok <scenario>" for each scenario that passed; exits non-zero on the first failure.
"""

import asyncio
import os

from bullmq_wire_client import Client, ErrorCode, RpcError, SyncClient


async def rejection(coro):
    try:
        await coro
    except RpcError as e:
        return e
    raise AssertionError("expected an RpcError")


async def main() -> None:
    url, token = os.environ["GW_URL"], os.environ["GW_TOKEN"]
    opened = []
    async with Client(url, token=token) as c:
        c.on("open", lambda e: opened.append(e["url"]))

        assert await c.call("demo.echo", {"hi": 1}) == {"hi": 1}
        print("ok echo", flush=True)

        seen, accepted = [], []
        result = await c.call(
            "demo.sleep",
            {"ms": 300, "steps": 3},
            on_progress=lambda p, job_id: seen.append(p),
            on_accepted=accepted.append,
        )
        assert result == {"slept": 300}
        assert accepted and accepted[0].startswith("demo."), accepted
        assert seen and all(p["of"] == 3 for p in seen), seen
        assert [p["step"] for p in seen] == sorted({p["step"] for p in seen}), seen
        print("ok progress", flush=True)

        result = await c.call("demo.flaky", {"failures": 2}, options={"attempts": 3, "backoff": 10})
        assert result == {"attempt": 3}, result
        print("ok retried", flush=True)

        err = await rejection(c.call("demo.fail", {"message": "no luck"}, options={"attempts": 2, "backoff": 10}))
        assert err.code == ErrorCode.JOB_FAILED and not err.retryable
        assert err.data == {"failedReason": "no luck", "attemptsMade": 2}, err.data
        print("ok failed_for_good", flush=True)

        got_id: asyncio.Future = asyncio.get_running_loop().create_future()
        call = asyncio.create_task(
            c.call("demo.echo", {"later": True}, options={"delay": 60_000}, on_accepted=got_id.set_result)
        )
        job_id = await got_id
        assert (await c.status(job_id))["state"] == "delayed"
        assert (await c.cancel(job_id))["cancelled"] is True
        err = await rejection(call)
        assert err.code == ErrorCode.JOB_REMOVED
        print("ok cancel", flush=True)

        results = await c.batch(
            [
                {"method": "demo.echo", "params": {"n": 1}},
                {"method": "demo.fail", "params": {"message": "in a batch"}},
                {"method": "demo.echo", "params": {"n": 3}},
            ]
        )
        assert results[0] == {"n": 1} and results[2] == {"n": 3}, results
        assert isinstance(results[1], RpcError) and results[1].code == ErrorCode.JOB_FAILED
        print("ok batch", flush=True)

        got_id = asyncio.get_running_loop().create_future()
        call = asyncio.create_task(c.call("demo.sleep", {"ms": 200, "steps": 2}, on_accepted=got_id.set_result))
        job_id = await got_id
        a, b = await asyncio.gather(call, c.subscribe(job_id))
        assert a == b == {"slept": 200}
        print("ok subscribe", flush=True)

        results = await asyncio.gather(*(c.call("demo.echo", {"i": i}) for i in range(500)))
        assert results == [{"i": i} for i in range(500)]
        print("ok concurrent_500", flush=True)

        assert opened == [url] and c.pending_count == 0, opened
        print("ok one_connection", flush=True)

    err = await rejection(c.call("demo.echo", {}))
    assert err.code == ErrorCode.CLOSED
    print("ok closed", flush=True)


asyncio.run(main())

with SyncClient(os.environ["GW_URL"], token=os.environ["GW_TOKEN"]) as sc:
    assert sc.call("demo.echo", {"sync": True}) == {"sync": True}
print("ok sync", flush=True)
