"""A synchronous wrapper for scripts: the asyncio client on a loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Dict, List, Optional, Sequence, TypeVar, Union

from .client import AcceptedCallback, Client, ProgressCallback
from .token import TokenSource

T = TypeVar("T")


class SyncClient:
    """``with SyncClient(url, token=...) as c: c.call("demo.echo", {...})``.

    Callbacks (``on_progress``...) run on the background thread.
    """

    def __init__(self, urls: Union[str, Sequence[str]], *, token: TokenSource, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bullmq-wire-client", daemon=True)
        self._thread.start()
        self._client = self._run(self._make(urls, token, options))

    @staticmethod
    async def _make(urls: Union[str, Sequence[str]], token: TokenSource, options: Dict[str, Any]) -> Client:
        client = Client(urls, token=token, **options)
        client.start()
        return client

    def _run(self, coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        params: Any = None,
        *,
        job_id: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
        on_progress: Optional[ProgressCallback] = None,
        on_accepted: Optional[AcceptedCallback] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        return self._run(
            self._client.call(
                method, params, job_id=job_id, options=options, on_progress=on_progress, on_accepted=on_accepted
            ),
            timeout,
        )

    def batch(self, calls: Sequence[Dict[str, Any]], timeout: Optional[float] = None) -> List[Any]:
        return self._run(self._client.batch(calls), timeout)

    def subscribe(self, job_id: str, *, on_progress: Optional[ProgressCallback] = None) -> Any:
        return self._run(self._client.subscribe(job_id, on_progress=on_progress))

    def status(self, job_id: str) -> Any:
        return self._run(self._client.status(job_id))

    def cancel(self, job_id: str) -> Any:
        return self._run(self._client.cancel(job_id))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
