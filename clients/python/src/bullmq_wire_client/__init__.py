"""Client for the bullmq-wire JSON-RPC gateway: calls, progress, reconnect and re-attach."""

from .client import Client
from .errors import ErrorCode, RpcError
from .sync import SyncClient

__all__ = ["Client", "ErrorCode", "RpcError", "SyncClient"]
__version__ = "0.1.0"
