"""EVALSHA requests for floor.lua, as RESP for `redis-cli --pipe`: one
per batch of `batch` jobs (default 10, the gateway's add batches), ids like
the gateway's (an owner tag and a uuid).

    python3 requests.py <sha> <jobs> [batch] | redis-cli -p <port> --pipe
"""
import json
import sys
import time
import uuid


def resp(*args):
    out = [f"*{len(args)}\r\n"]
    for a in args:
        b = a.encode()
        out.append(f"${len(b)}\r\n")
        out.append(a + "\r\n")
    return "".join(out)


def main():
    sha, jobs = sys.argv[1], int(sys.argv[2])
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    now = int(time.time() * 1000)
    opts = json.dumps(
        {"jobId": "x", "removeOnComplete": {"age": 3600}, "removeOnFail": {"age": 3600}},
        separators=(",", ":"),
    )
    data = json.dumps({"text": "hello"}, separators=(",", ":"))
    chunks = []
    for start in range(0, jobs, batch):
        ids = ["u7f3a9c21:" + str(uuid.uuid4()) for _ in range(min(batch, jobs - start))]
        cutoff = str(now - 3600_000)
        chunks.append(resp("EVALSHA", sha, "0", data, opts, str(now), cutoff, str(len(ids)), *ids))
    sys.stdout.write("".join(chunks))


if __name__ == "__main__":
    main()
