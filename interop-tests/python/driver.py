"""Python side of the bullmq-wire conformance harness (PyPI bullmq 3.4.4).

    .venv/bin/python driver.py <command> '<json-config>'

Commands:
  add     one-shot: Queue.add (or Queue.addBulk with "bulk": true), prints {"ids": [...]}
  worker  long-running: bullmq Worker, processor chosen by job name
  events  long-running: bullmq QueueEvents, prints every event

One-shot commands print one JSON document and exit 0, or {"error": "..."} and
exit 1. Long-running commands print {"ready":true}, one JSON line per event,
and {"closed":true} after SIGTERM/SIGINT or stdin EOF (unless "watchStdin":
false). See ../README.md for every config key.
"""

import asyncio
import json
import os
import signal
import sys
import threading
from urllib.parse import parse_qsl, unquote, urlparse

from bullmq import Queue, QueueEvents, UnrecoverableError, Worker
import redis.asyncio as aioredis

# Worker options passed through from the config when present.
WORKER_OPTION_KEYS = [
    "concurrency", "name", "lockDuration", "lockRenewTime", "stalledInterval",
    "maxStalledCount", "drainDelay", "removeOnComplete", "removeOnFail",
    "limiter", "runRetryDelay",
]


# ---------------------------------------------------------------- helpers

def emit_line(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log_err(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def parse_config(raw):
    cfg = json.loads(raw) if raw and raw.strip() else {}
    if not isinstance(cfg, dict):
        raise ValueError("config must be a JSON object")
    if not cfg.get("redisUrl"):
        raise ValueError("config.redisUrl is required")
    if not cfg.get("queue"):
        raise ValueError("config.queue is required")
    if urlparse(cfg["redisUrl"]).scheme not in ("redis", "redis+cluster", "redis+sentinel"):
        raise ValueError("unsupported redisUrl scheme")
    cfg.setdefault("prefix", "bull")
    return cfg


def make_connection(cfg):
    """What bullmq takes as `connection`: the `redis://` URL string itself
    (bullmq calls redis.from_url), or a redis-py client for the URLs
    bullmq-wire takes for a cluster and a Sentinel set:
    `redis+cluster://[user:pass@]host:port,host:port` (a RedisCluster of the
    seed nodes) and
    `redis+sentinel://[user:pass@]host:port,host:port/master[/db][?sentinel_password=..]`
    (the master, through `Sentinel.master_for`). bullmq uses a client it is
    given for both of a worker's connections."""
    url = cfg["redisUrl"]
    scheme, _, rest = url.partition("://")
    if scheme == "redis":
        return url
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    creds = {}
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            creds["username"] = unquote(user)
        if colon:
            creds["password"] = unquote(password)
    default_port = 6379 if scheme == "redis+cluster" else 26379
    nodes = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":") if host.rfind(":") > host.rfind("]") else (host, "", "")
        nodes.append((name.strip("[]"), int(port) if port else default_port))
    if not nodes:
        raise ValueError("redisUrl names no host:port")
    if scheme == "redis+cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes],
                            decode_responses=True, **creds)
    from redis.asyncio.sentinel import Sentinel
    params = dict(parse_qsl(query))
    sentinel_kwargs = {}
    if "sentinel_username" in params:
        sentinel_kwargs["username"] = params["sentinel_username"]
    if "sentinel_password" in params:
        sentinel_kwargs["password"] = params["sentinel_password"]
    segments = [seg for seg in path.split("/") if seg]
    if not segments:
        raise ValueError("a sentinel URL names the master after the hosts")
    if len(segments) > 1:
        creds["db"] = int(segments[1])
    sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(unquote(segments[0]), decode_responses=True, **creds)


def base_options(cfg):
    return {"connection": make_connection(cfg), "prefix": cfg["prefix"]}


class StopSignal:
    """Set once on SIGTERM/SIGINT or stdin EOF."""

    def __init__(self, cfg):
        self.event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.event.set)
        if cfg.get("watchStdin", True):
            # A thread works for pipes, ttys and /dev/null alike. It reads the
            # raw fd: a daemon thread parked in sys.stdin.buffer would hold
            # its lock and abort the interpreter at shutdown.
            def wait_for_eof():
                try:
                    while os.read(0, 4096):
                        pass
                except (OSError, ValueError):
                    pass
                loop.call_soon_threadsafe(self.event.set)

            threading.Thread(target=wait_for_eof, daemon=True).start()

    async def wait(self):
        await self.event.wait()


# ---------------------------------------------------------------- processors

async def p_echo(job):
    return {"echo": job.data}


async def p_sleep(job):
    data = job.data or {}
    ms = float(data.get("ms", 0))
    steps = max(1, int(data.get("steps", 1)))
    for i in range(1, steps + 1):
        await asyncio.sleep(ms / steps / 1000)
        # Node's Math.round: halves round up (Python's round() is banker's).
        await job.updateProgress(int(100 * i / steps + 0.5))
    return {"slept": data.get("ms", 0)}


async def p_fail(job):
    times = int((job.data or {}).get("times", 0))
    if job.attemptsMade < times:
        raise Exception("demo failure")
    return {"attempts": job.attemptsMade + 1}


async def p_unrecoverable(job):
    raise UnrecoverableError("unrecoverable failure")


async def p_log(job):
    await job.log("line 1")
    await job.log("line 2")
    await job.updateProgress({"stage": "half"})
    return {"logged": 2}


async def p_hang(job):
    # Never settles: the job stays active until the process dies (stall tests).
    await asyncio.Future()


async def p_count(job):
    return {"ok": True}


PROCESSORS = {
    "echo": p_echo,
    "sleep": p_sleep,
    "fail": p_fail,
    "unrecoverable": p_unrecoverable,
    "log": p_log,
    "hang": p_hang,
    "count": p_count,
}


# ---------------------------------------------------------------- commands

async def cmd_add(cfg):
    queue = Queue(cfg["queue"], base_options(cfg))
    try:
        jobs = cfg.get("jobs") or []
        if cfg.get("bulk"):
            added = await queue.addBulk([
                {"name": j.get("name"), "data": j.get("data", {}), "opts": j.get("opts") or {}}
                for j in jobs
            ])
            return {"ids": [job.id for job in added]}
        ids = []
        for j in jobs:
            job = await queue.add(j.get("name"), j.get("data", {}), j.get("opts") or {})
            ids.append(job.id)
        return {"ids": ids}
    finally:
        await queue.close()


async def cmd_upsert_scheduler(cfg):
    """config.id, config.repeat, config.template -> {"id": next job id}."""
    queue = Queue(cfg["queue"], base_options(cfg))
    try:
        template = cfg.get("template") or {}
        job = await queue.upsertJobScheduler(
            cfg["id"], cfg["repeat"], template.get("name"), template.get("data", {}), template.get("opts") or {}
        )
        return {"id": job.id if job else None}
    finally:
        await queue.close()


async def cmd_worker(cfg):
    stop = StopSignal(cfg)
    exit_after = cfg.get("exitAfter")
    close_timeout = cfg.get("closeTimeoutMs", 5000) / 1000
    finished = 0
    done = asyncio.Event()

    async def processor(job, token):
        emit_line({"event": "start", "id": job.id, "name": job.name,
                   "attemptsMade": job.attemptsMade})
        behaviour = PROCESSORS.get(job.name)
        return await behaviour(job) if behaviour else None

    def count_finished():
        nonlocal finished
        finished += 1
        if exit_after is not None and finished >= exit_after:
            done.set()

    def on_completed(job, result):
        emit_line({"event": "completed", "id": job.id, "returnvalue": result})
        count_finished()

    def on_failed(job, err):
        emit_line({"event": "failed", "id": job.id,
                   "failedReason": job.failedReason or str(err),
                   "attemptsMade": job.attemptsMade})
        # finishedOn is only set when the job landed in the failed set.
        if job.finishedOn:
            count_finished()

    opts = base_options(cfg)
    for key in WORKER_OPTION_KEYS:
        if key in cfg:
            opts[key] = cfg[key]
    # The driver starts the loop by hand after {"ready":true}, so no job can
    # start before that line. Config "autorun": false keeps bullmq's meaning:
    # run() is never called, the worker stays connected and idle.
    autorun = cfg.get("autorun", True)
    opts["autorun"] = False
    worker = Worker(cfg["queue"], processor, opts)
    worker.on("completed", on_completed)
    worker.on("failed", on_failed)
    worker.on("stalled", lambda job_id, *rest: emit_line({"event": "stalled", "id": job_id}))
    worker.on("error", lambda err, *rest: log_err(f"worker error: {err}"))

    # Connect and name both connections (regular and blocking: CLIENT
    # SETNAME, what run() does first; idempotent) before announcing, so
    # getWorkers() sees this worker once "ready" is out.
    ready_timeout = cfg.get("timeoutMs", 30000) / 1000
    await asyncio.wait_for(worker._ensure_client_names(), ready_timeout)
    emit_line({"ready": True})
    if autorun:
        run_task = asyncio.ensure_future(worker.run())
        run_task.add_done_callback(
            lambda t: t.cancelled() or t.exception() is None
            or log_err(f"run error: {t.exception()}"))
    if exit_after == 0:
        done.set()

    stop_task = asyncio.ensure_future(stop.wait())
    done_task = asyncio.ensure_future(done.wait())
    await asyncio.wait({stop_task, done_task}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stop_task, done_task):
        task.cancel()

    try:
        await asyncio.wait_for(asyncio.shield(worker.close(force=cfg.get("forceClose", False))),
                               close_timeout)
    except asyncio.TimeoutError:
        # Active jobs (e.g. `hang`) did not finish: abandon them.
        worker.forceClosing = True
        worker.cancelProcessing()
        try:
            await asyncio.wait_for(worker.backend.close(force=True), close_timeout)
        except Exception as err:  # noqa: BLE001 - shutdown noise only
            log_err(f"force close: {err}")
    emit_line({"closed": True})


async def resolve_last_event_id(cfg):
    """Pin `$` to the stream's current last id (`0-0` when empty), so events
    written right after `ready` are not lost to the XREAD start-up race."""
    wanted = cfg.get("lastEventId", "$")
    if wanted != "$":
        return wanted
    conn = make_connection(cfg)
    client = aioredis.from_url(conn, decode_responses=True) if isinstance(conn, str) else conn
    try:
        last = await client.xrevrange(f"{cfg['prefix']}:{cfg['queue']}:events", "+", "-", count=1)
        return last[0][0] if last else "0-0"
    finally:
        await client.aclose()


async def cmd_events(cfg):
    stop = StopSignal(cfg)
    opts = base_options(cfg)
    opts["lastEventId"] = await resolve_last_event_id(cfg)
    if "blockingTimeout" in cfg:
        opts["blockingTimeout"] = cfg["blockingTimeout"]
    opts["autorun"] = False
    queue_events = QueueEvents(cfg["queue"], opts)

    # Generic hook, like the Node driver: print each stream entry once, as
    # delivered; skip the per-job repeats emitted on "<event>:<jobId>".
    original_emit = queue_events.emit
    errors = []

    def hooked_emit(event, *args, **kwargs):
        first = args[0] if args else None
        if event == "error":
            errors.append(str(first))
            log_err(f"queue events error: {first}")
        elif event == "drained":
            emit_line({"event": event, "args": None, "id": first})
        else:
            job_id = first.get("jobId") if isinstance(first, dict) else None
            if not (job_id is not None and event.endswith(f":{job_id}")):
                emit_line({"event": event, "args": first,
                           "id": args[1] if len(args) > 1 else None})
        return original_emit(event, *args, **kwargs)

    queue_events.emit = hooked_emit
    task = asyncio.ensure_future(queue_events.run())
    # The start id is pinned, so every event after this line will be seen.
    emit_line({"ready": True})
    stop_task = asyncio.ensure_future(stop.wait())
    await asyncio.wait({stop_task, task}, return_when=asyncio.FIRST_COMPLETED)
    stop_task.cancel()
    await queue_events.close()
    if task.done() and not stop.event.is_set():
        # The consumer loop gave up on its own (it does so on any read error).
        raise RuntimeError(errors[-1] if errors else "QueueEvents stopped")
    emit_line({"closed": True})


ONE_SHOT = {"add": cmd_add, "upsertScheduler": cmd_upsert_scheduler}
LONG_RUNNING = {"worker": cmd_worker, "events": cmd_events}


async def main(argv):
    command = argv[1] if len(argv) > 1 else None
    try:
        cfg = parse_config(argv[2] if len(argv) > 2 else "")
    except Exception as err:  # noqa: BLE001
        emit_line({"error": f"bad config: {err}"})
        return 1
    if command in ONE_SHOT:
        try:
            result = await asyncio.wait_for(ONE_SHOT[command](cfg), cfg.get("timeoutMs", 30000) / 1000)
        except asyncio.TimeoutError:
            emit_line({"error": f"timed out after {cfg.get('timeoutMs', 30000)} ms"})
            return 1
        except Exception as err:  # noqa: BLE001
            emit_line({"error": str(err)})
            return 1
        emit_line(result)
        return 0
    if command in LONG_RUNNING:
        try:
            await LONG_RUNNING[command](cfg)
        except Exception as err:  # noqa: BLE001
            emit_line({"error": str(err)})
            return 1
        return 0
    known = ", ".join([*ONE_SHOT, *LONG_RUNNING])
    emit_line({"error": f"unknown command {json.dumps(command)}; expected one of {known}"})
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv)))
