"""Failover: run by gateway/tests/it/sdk/failover.rs with GW_URLS (two gateways on
one Redis) and GW_TOKEN. Starts long calls with progress on the first gateway and
prints "inflight" once each has progressed; the test then kills that gateway
(SIGKILL). Every call must end exactly once with its result, via the other.
"""

import asyncio
import os

from bullmq_wire_client import Client

N = 12


async def main() -> None:
    urls = os.environ["GW_URLS"].split(",")
    opens = []
    progressed, after_reopen = set(), set()
    everyone = asyncio.Event()
    settled = [0] * N
    async with Client(
        urls, token=os.environ["GW_TOKEN"], backoff_initial=0.05, backoff_max=0.5,
        heartbeat_interval=2.0, heartbeat_timeout=2.0,
    ) as c:
        c.on("open", lambda e: opens.append(e["url"]))

        def progress(i):
            def seen(_p, _job_id):
                progressed.add(i)
                if len(opens) > 1:
                    after_reopen.add(i)
                if len(progressed) == N:
                    everyone.set()
            return seen

        async def one(i):
            try:
                return await c.call("demo.sleep", {"ms": 4000, "steps": 40}, on_progress=progress(i))
            finally:
                settled[i] += 1

        calls = [asyncio.create_task(one(i)) for i in range(N)]
        await everyone.wait()
        assert opens == [urls[0]], opens
        print("inflight", flush=True)
        results = await asyncio.gather(*calls)
        assert results == [{"slept": 4000}] * N, results
        assert settled == [1] * N, settled
        assert opens == urls, opens
        assert after_reopen, "progress resumed on the other gateway"
        assert c.pending_count == 0
    print("ok failover", flush=True)


asyncio.run(main())
