"""The asyncio client: calls, progress, re-attach by job id after reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import ssl as ssl_module
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Union

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from .backoff import backoff_delay
from .errors import ErrorCode, RpcError
from .token import TokenSource, refresh_delay, resolve_token, token_expiry

ProgressCallback = Callable[[Any, str], None]
AcceptedCallback = Callable[[str], None]
EventCallback = Callable[[Dict[str, Any]], None]

#: close codes after which reconnecting without a change cannot help
_FINAL_CLOSES = {1000, 1007, 1009, 4401}


@dataclass
class _Pending:
    id: str
    frame: Dict[str, Any]
    future: asyncio.Future[Any]
    on_progress: Optional[ProgressCallback] = None
    on_accepted: Optional[AcceptedCallback] = None
    job_id: Optional[str] = None
    sent: bool = False
    retries: int = 0


@dataclass
class _Listeners:
    open: List[EventCallback] = field(default_factory=list)
    close: List[EventCallback] = field(default_factory=list)
    reconnecting: List[EventCallback] = field(default_factory=list)


class Client:
    """A connection to one of several gateways that survives drops.

    Every call carries a job id (yours or a generated one); after a reconnect
    each call still waiting is sent again with it, which attaches to the same
    job on whichever gateway, so each call ends exactly once.

    ``async with Client(url_or_urls, token=...) as c: await c.call(...)``
    """

    def __init__(
        self,
        urls: Union[str, Sequence[str]],
        *,
        token: TokenSource,
        ssl: Optional[ssl_module.SSLContext] = None,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        queue_limit: int = 10_000,
        max_in_flight: int = 256,
        heartbeat_interval: float = 15.0,
        heartbeat_timeout: float = 10.0,
        max_retries: int = 8,
    ) -> None:
        self._urls = [urls] if isinstance(urls, str) else list(urls)
        if not self._urls:
            raise ValueError("at least one URL is needed")
        self._token = token
        self._ssl = ssl
        self._backoff = (backoff_initial, backoff_max)
        self._queue_limit = queue_limit
        self._max_in_flight = max_in_flight
        self._heartbeat = (heartbeat_interval, heartbeat_timeout)
        self._max_retries = max_retries
        self._pending: Dict[str, _Pending] = {}
        self._queue: List[str] = []
        self._in_flight = 0
        self._ids = itertools.count(1)
        self._out: Optional[asyncio.Queue[str]] = None
        self._closed = False
        self._task: Optional[asyncio.Task[None]] = None
        self._listeners = _Listeners()
        # set by a 4429/4400 close until a socket opens: the gateway refuses
        # this user (HTTP 429 with Retry-After) for its abuse cool-down
        self._cooling = False
        # after reopening from a cool-down: one request at a time, the next
        # once the gateway answered the last, until the backlog is sent
        self._paced = False
        self._paced_waiting: Optional[str] = None
        # a rate-limited answer stops all sending until then (loop time)
        self._paused_until = 0.0
        self._pause_handle: Optional[asyncio.TimerHandle] = None
        # calls given up after they were sent and before rpc.accepted named their job
        self._cancel_on_accept: Set[str] = set()

    # ---- lifecycle ----

    async def __aenter__(self) -> Client:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Starts connecting (``async with`` does it); calls made before wait in the queue."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Closes for good; calls still waiting fail with -32091."""
        if self._closed:
            return
        self._closed = True
        self._fail_all(RpcError(ErrorCode.CLOSED, "client closed"))
        if self._pause_handle is not None:
            self._pause_handle.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on(self, event: str, callback: EventCallback) -> None:
        """Listens to ``open`` {url}, ``close`` {code, reason, reconnect}, ``reconnecting`` {attempt, delay, url}."""
        getattr(self._listeners, event).append(callback)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # ---- calls ----

    async def call(
        self,
        method: str,
        params: Any = None,
        *,
        job_id: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
        on_progress: Optional[ProgressCallback] = None,
        on_accepted: Optional[AcceptedCallback] = None,
    ) -> Any:
        """Calls ``service.method`` and returns the job's result; cancelling the awaiting task cancels the job."""
        frame = self._job_frame(method, params, job_id, options)
        return await self._request(frame, on_progress, on_accepted)

    async def batch(self, calls: Sequence[Dict[str, Any]]) -> List[Any]:
        """Sends calls ({method, params?, job_id?, options?}) in one frame; each item is a result or an RpcError."""
        frames = [
            self._job_frame(c["method"], c.get("params"), c.get("job_id"), c.get("options"))
            for c in calls
        ]
        entries = [self._register(f, None, None) for f in frames]
        direct = not self._paced and asyncio.get_running_loop().time() >= self._paused_until
        if direct and self._can_send() and self._room() >= len(frames) and not self._queue and self._out:
            for e in entries:
                self._mark_sent(e)
            self._out.put_nowait(json.dumps(frames))
        else:
            self._queue.extend(e.id for e in entries)
            self._pump()
        results = await asyncio.gather(*(e.future for e in entries), return_exceptions=True)
        return list(results)

    async def subscribe(self, job_id: str, *, on_progress: Optional[ProgressCallback] = None) -> Any:
        """Waits for the end of a job by its gateway job id (as ``on_accepted`` told it)."""
        return await self._request(self._built_in("rpc.subscribe", {"jobId": job_id}), on_progress, None)

    async def status(self, job_id: str) -> Any:
        return await self._request(self._built_in("rpc.status", {"jobId": job_id}), None, None)

    async def cancel(self, job_id: str) -> Any:
        """Removes a job that has not started; an active job is not interrupted."""
        return await self._request(self._built_in("rpc.cancel", {"jobId": job_id}), None, None)

    # ---- requests ----

    def _job_frame(
        self, method: str, params: Any, job_id: Optional[str], options: Optional[Dict[str, Any]]
    ) -> Dict[str, Any]:
        frame: Dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": f"c{next(self._ids)}",
            "method": method,
            "jobId": job_id or uuid.uuid4().hex,
            "ack": True,  # the gateway's job id comes early, for cancel and re-attach
        }
        if params is not None:
            frame["params"] = params
        if options is not None:
            frame["options"] = options
        return frame

    def _built_in(self, method: str, params: Any) -> Dict[str, Any]:
        return {"jsonrpc": "2.0", "id": f"c{next(self._ids)}", "method": method, "params": params}

    def _register(
        self,
        frame: Dict[str, Any],
        on_progress: Optional[ProgressCallback],
        on_accepted: Optional[AcceptedCallback],
    ) -> _Pending:
        if self._closed:
            raise RpcError(ErrorCode.CLOSED, "client closed")
        if len(self._queue) >= self._queue_limit:
            raise RpcError(ErrorCode.QUEUE_FULL, "too many calls waiting to be sent")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = _Pending(frame["id"], frame, fut, on_progress, on_accepted)
        self._pending[entry.id] = entry
        return entry

    async def _request(
        self,
        frame: Dict[str, Any],
        on_progress: Optional[ProgressCallback],
        on_accepted: Optional[AcceptedCallback],
    ) -> Any:
        self.start()
        entry = self._register(frame, on_progress, on_accepted)
        self._queue.append(entry.id)
        self._pump()
        try:
            return await asyncio.shield(entry.future)
        except asyncio.CancelledError:
            self._abandon(entry)
            raise

    def _abandon(self, entry: _Pending) -> None:
        """The caller gave up: forget the call, and cancel its job if it has not started."""
        if self._settle(entry.id) is None:
            return
        entry.future.cancel()
        if "jobId" in entry.frame:
            if entry.job_id:
                self._send_internal("rpc.cancel", {"jobId": entry.job_id})
            elif entry.sent:
                # the job may be enqueued already: cancel it once rpc.accepted names it
                self._cancel_on_accept.add(entry.id)
        self._pump()

    def _can_send(self) -> bool:
        return self._out is not None

    def _room(self) -> int:
        return self._max_in_flight - self._in_flight

    def _mark_sent(self, entry: _Pending) -> None:
        if not entry.sent:
            entry.sent = True
            self._in_flight += 1

    def _pump(self) -> None:
        """Moves queued requests to the socket while it is open and the window has room."""
        out = self._out
        if out is None:
            return
        loop = asyncio.get_running_loop()
        wait = self._paused_until - loop.time()
        if wait > 0:
            if self._pause_handle is None:

                def resume() -> None:
                    self._pause_handle = None
                    self._pump()

                self._pause_handle = loop.call_later(wait, resume)
            return
        while self._queue and self._room() > 0:
            if self._paced and self._paced_waiting is not None:
                return
            entry = self._pending.get(self._queue.pop(0))
            if entry is None or entry.sent:
                continue
            self._mark_sent(entry)
            out.put_nowait(json.dumps(entry.frame))
            # rpc.subscribe is answered only when its job ends: the next need not wait for it
            if self._paced and entry.frame.get("method") != "rpc.subscribe":
                self._paced_waiting = entry.id
        if self._paced and self._paced_waiting is None and not self._queue:
            self._paced = False

    def _answered(self, request_id: Any) -> None:
        """The gateway answered ``request_id`` in some way: in paced mode the next request may go."""
        if request_id is not None and request_id == self._paced_waiting:
            self._paced_waiting = None
            self._pump()

    def _settle(self, request_id: str) -> Optional[_Pending]:
        entry = self._pending.pop(request_id, None)
        if entry is not None and entry.sent:
            self._in_flight -= 1
        return entry

    def _send_internal(self, method: str, params: Any = None) -> None:
        """A request whose answer nobody waits for (cancels, token refreshes)."""
        if self._out is None:
            return
        frame: Dict[str, Any] = {"jsonrpc": "2.0", "id": f"x{next(self._ids)}", "method": method}
        if params is not None:
            frame["params"] = params
        self._out.put_nowait(json.dumps(frame))

    def _fail_all(self, err: RpcError) -> None:
        entries = list(self._pending.values())
        self._pending.clear()
        self._queue.clear()
        self._in_flight = 0
        for e in entries:
            if not e.future.done():
                e.future.set_exception(err)

    # ---- frames from the gateway ----

    def _on_frame(self, text: Union[str, bytes]) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        for m in msg if isinstance(msg, list) else [msg]:
            if isinstance(m, dict):
                self._on_message(m)

    def _on_message(self, m: Dict[str, Any]) -> None:
        method = m.get("method")
        if isinstance(method, str):
            params = m.get("params") or {}
            if not isinstance(params, dict):
                return
            request_id = params.get("id")
            if not isinstance(request_id, str):
                return
            self._answered(request_id)
            job_id = params.get("jobId") if isinstance(params.get("jobId"), str) else ""
            if method == "rpc.accepted" and request_id in self._cancel_on_accept:
                self._cancel_on_accept.discard(request_id)
                if job_id:
                    self._send_internal("rpc.cancel", {"jobId": job_id})
                return
            entry = self._pending.get(request_id)
            if entry is None:
                return
            if job_id:
                entry.job_id = job_id
            if method == "rpc.accepted" and entry.on_accepted:
                entry.on_accepted(job_id)
            elif method == "rpc.progress" and entry.on_progress:
                entry.on_progress(params.get("progress"), job_id)
            return
        request_id = m.get("id")
        self._answered(request_id)
        entry = self._pending.get(request_id) if isinstance(request_id, str) else None
        if entry is None:
            if isinstance(request_id, str):
                self._cancel_on_accept.discard(request_id)
            return
        if "error" not in m:
            self._settle(entry.id)
            if not entry.future.done():
                entry.future.set_result(m.get("result"))
        else:
            err = RpcError.from_error(m.get("error"))
            if err.code == ErrorCode.RATE_LIMITED:
                self._pause_for(err)
            if err.retryable and entry.retries < self._max_retries:
                self._retry_later(entry, err)
            else:
                self._settle(entry.id)
                if not entry.future.done():
                    entry.future.set_exception(err)
        self._pump()

    def _pause_for(self, err: RpcError) -> None:
        """A rate-limited answer: nothing more goes out until its ``retryAfterMs`` has passed."""
        hint = err.data.get("retryAfterMs") if isinstance(err.data, dict) else None
        wait = hint / 1000 if isinstance(hint, (int, float)) and hint > 0 else self._backoff[0]
        until = asyncio.get_running_loop().time() + wait
        self._paused_until = max(self._paused_until, until)

    def _retry_later(self, entry: _Pending, err: RpcError) -> None:
        """Sends a call the gateway did not accept again, after its hint or a backoff delay."""
        if entry.sent:
            entry.sent = False
            self._in_flight -= 1
        entry.retries += 1
        hint = err.data.get("retryAfterMs") if isinstance(err.data, dict) else None
        delay = max((hint or 0) / 1000, backoff_delay(entry.retries, *self._backoff))

        def again() -> None:
            if self._pending.get(entry.id) is entry and not entry.sent:
                self._queue.insert(0, entry.id)
                self._pump()

        asyncio.get_running_loop().call_later(delay, again)

    # ---- the connection ----

    def _emit(self, event: str, payload: Dict[str, Any]) -> None:
        for cb in list(getattr(self._listeners, event)):
            with contextlib.suppress(Exception):
                cb(payload)

    async def _run(self) -> None:
        index = 0
        attempt = 0
        while not self._closed:
            url = self._urls[index % len(self._urls)]
            code, reason = 1006, ""
            retry_after: Optional[float] = None
            try:
                token = await resolve_token(self._token)
                async with connect(
                    url,
                    subprotocols=[f"bearer.{token}", "jsonrpc.v1"],  # type: ignore[list-item]
                    ssl=self._ssl if url.startswith("wss:") else None,
                    ping_interval=self._heartbeat[0],
                    ping_timeout=self._heartbeat[1],
                    # a dead socket: the close frame after a missed pong gets
                    # no answer either, so wait no longer than for the pong
                    # (websockets' default is 10 s on top of the ping timeout)
                    close_timeout=self._heartbeat[1],
                    max_size=None,
                    open_timeout=self._heartbeat[0],
                ) as ws:
                    attempt = 0
                    code, reason = await self._serve(ws, url, token)
            except InvalidStatus as e:
                status = e.response.status_code
                if status == 401 and isinstance(self._token, str):
                    self._finish(4401, f"HTTP {status}")
                    return
                if status in (429, 503):
                    # the gateway says when to come back (abuse cool-down, too many connections)
                    with contextlib.suppress(ValueError):
                        retry_after = float(e.response.headers.get("Retry-After", ""))
            except (OSError, asyncio.TimeoutError, WebSocketException):
                pass
            final = code in _FINAL_CLOSES and not (code == 4401 and not isinstance(self._token, str))
            self._emit("close", {"code": code, "reason": reason, "reconnect": not final})
            if final:
                self._finish(code, reason)
                return
            index += 1
            attempt += 1
            if code in (4429, 4400):
                # closed for abuse: the gateway refuses this user for a while
                self._cooling = True
            if retry_after is not None:
                delay = retry_after + random.uniform(0, self._backoff[0])
            elif self._cooling:
                delay = random.uniform(self._backoff[1] / 2, self._backoff[1])
            else:
                delay = backoff_delay(attempt - 1, *self._backoff)
            self._emit(
                "reconnecting",
                {"attempt": attempt, "delay": delay, "url": self._urls[index % len(self._urls)]},
            )
            await asyncio.sleep(delay)

    def _finish(self, code: int, reason: str) -> None:
        self._closed = True
        self._fail_all(
            RpcError(ErrorCode.CLOSED, f"gateway closed the connection ({code})", {"code": code, "reason": reason})
        )

    async def _serve(self, ws: ClientConnection, url: str, token: str) -> "tuple[int, str]":
        """Runs one socket until it closes; returns its close code and reason."""
        out: asyncio.Queue[str] = asyncio.Queue()
        self._out = out
        sender = asyncio.get_running_loop().create_task(self._send_loop(ws, out))
        refresher = asyncio.get_running_loop().create_task(self._refresh_loop(token))
        self._paced = self._cooling
        self._paced_waiting = None
        self._cooling = False
        try:
            self._emit("open", {"url": url})
            self._reattach()
            async for text in ws:
                self._on_frame(text)
            return (ws.close_code or 1006, ws.close_reason or "")
        except ConnectionClosed as e:
            rcvd = e.rcvd
            return (rcvd.code, rcvd.reason) if rcvd else (1006, "")
        finally:
            self._out = None
            sender.cancel()
            refresher.cancel()
            await ws.close()

    async def _send_loop(self, ws: ClientConnection, out: asyncio.Queue[str]) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(await out.get())

    async def _refresh_loop(self, token: str) -> None:
        """With a token function, sends ``rpc.auth`` with a fresh token before this one expires."""
        if isinstance(self._token, str):
            return
        while True:
            exp = token_expiry(token)
            if exp is None:
                return
            await asyncio.sleep(refresh_delay(exp))
            token = await resolve_token(self._token)
            self._send_internal("rpc.auth", {"token": token})

    def _reattach(self) -> None:
        """Everything still pending goes out again, in the order it was made."""
        self._in_flight = 0
        for e in self._pending.values():
            e.sent = False
        self._queue = list(self._pending.keys())
        self._pump()
