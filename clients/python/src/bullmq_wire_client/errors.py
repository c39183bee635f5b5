"""JSON-RPC error codes of the gateway (docs/protocol.md) and of this client."""

from __future__ import annotations

from typing import Any


class ErrorCode:
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL = -32603
    UNAUTHORIZED = -32000
    RATE_LIMITED = -32001
    MESSAGE_TOO_LARGE = -32002
    JOB_NOT_FOUND = -32003
    REDIS_UNAVAILABLE = -32004
    TOO_MANY_IN_FLIGHT = -32005
    JOB_FAILED = -32010
    JOB_REMOVED = -32011
    UNSUBSCRIBED = -32012
    #: client side: the queue of calls waiting for a connection is full
    QUEUE_FULL = -32090
    #: client side: the client was closed, or the gateway closed for good
    CLOSED = -32091


_RETRYABLE = {ErrorCode.RATE_LIMITED, ErrorCode.REDIS_UNAVAILABLE, ErrorCode.TOO_MANY_IN_FLIGHT}


class RpcError(Exception):
    """A call that ended in a JSON-RPC error, from the gateway or from this client."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data
        flagged = isinstance(data, dict) and data.get("retryable") is True
        #: True when sending the same call again may succeed
        self.retryable = flagged or code in _RETRYABLE

    @classmethod
    def from_error(cls, error: Any) -> RpcError:
        """Builds the error from a response's ``error`` member, whatever its shape."""
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            return cls(
                code if isinstance(code, int) else ErrorCode.INTERNAL,
                message if isinstance(message, str) else "error",
                error.get("data"),
            )
        return cls(ErrorCode.INTERNAL, str(error))
