"""An unmodified Python BullMQ worker serving one queue behind the gateway
(tests only): python python_worker.py <redis-url> <queue>
Methods: echo, progress, fail (as node_worker.cjs). Prints "ready"."""
import asyncio
import sys

from bullmq import Worker


async def process(job, token):
    if job.name == "echo":
        return job.data
    if job.name == "progress":
        await job.updateProgress(50)
        return {"done": "python"}
    if job.name == "fail":
        raise Exception(job.data.get("message", "python failure"))
    raise Exception(f"unknown method {job.name}")


async def main():
    url, queue = sys.argv[1], sys.argv[2]
    worker = Worker(queue, process, {"connection": url, "concurrency": 4})
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until stdin closes
    await worker.close()


asyncio.run(main())
