"""The PRD's example 6.2 with the SDK (synchronous, like the original).

GW_URL (ws[s]://host:port/ws) and GW_TOKEN (a JWT) come from the environment.
"""

import json
import os

from bullmq_wire_client import SyncClient

with SyncClient(os.environ["GW_URL"], token=os.environ["GW_TOKEN"]) as client:
    print("Connected")
    result = client.call("analysis.runModel", {"data": "input"},
                         on_progress=lambda p, job_id: print("Progress:", p))
    print("Result:", json.dumps(result, sort_keys=True))
