"""A knowledge base's vectors on a Chroma server (`store.url`), shared by every kb instance.

A server takes concurrent requests and looks after its own files, so calls are not locked
here. An instance whose server is unreachable answers StoreError (503) naming it, and works
again once it is back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from kb.errors import StoreError
from kb.store import COLLECTION_PREFIX
from kb.store.collection import ChromaCollection, Operation, T, open_collection


class ServerChromaStore(ChromaCollection):
    def __init__(self, url: str, kb: str) -> None:
        self._url, self._kb = url, kb
        try:
            self._open(create=True)
        except Exception as exc:
            raise server_error(url, f"cannot open the collection of {kb!r}", exc) from exc

    def _open(self, create: bool) -> None:
        self._client = _http_client(self._url)
        self._col = open_collection(self._client, self._kb, create)
        self._batch = self._client.get_max_batch_size()

    def _call(self, what: str, operation: Operation[T], write: bool = False) -> T:
        """Runs one operation. chromadb addresses a collection by its id: when another
        instance deleted the KB and built it again, the new collection has a new id and the
        call fails with "... does not exist"; the collection is looked up by name again and
        the operation repeated once. A read never creates the collection."""
        try:
            return operation(self._col)
        except Exception as exc:
            if "does not exist" not in str(exc).lower():
                raise server_error(self._url, what, exc) from exc
        try:
            self._open(create=write)
            return operation(self._col)
        except Exception as exc:
            raise server_error(self._url, what, exc) from exc

    def close(self) -> None:
        pass  # an HTTP client holds nothing that outlives it


def _unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the server could not be reached (rather than that it refused)."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    return "could not connect to a chroma server" in str(exc).lower()


def ping_server(url: str) -> None:
    """Raises StoreError naming the server if the Chroma server at `url` does not answer
    (readiness, kb doctor)."""
    _on_server(url, "the vector store does not answer", lambda client: client.heartbeat())


def delete_remote(url: str, kb: str) -> None:
    """Drops a KB's collection on a Chroma server (`kb kbs delete`); gone already is fine."""

    def delete(client: Any) -> None:
        try:
            client.delete_collection(COLLECTION_PREFIX + kb)
        except Exception as exc:
            if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                raise

    _on_server(url, "deleting the collection failed", delete)


# One client per server URL for the calls above (a readiness check a second): a failed call
# drops it, so the next one connects afresh.
_servers: dict[str, Any] = {}


def _on_server(url: str, what: str, call: Callable[[Any], Any]) -> Any:
    try:
        client = _servers.get(url) or _servers.setdefault(url, _http_client(url))
        return call(client)
    except Exception as exc:
        _servers.pop(url, None)
        raise server_error(url, what, exc) from exc


def _http_client(url: str) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parts = urlsplit(url)
    return chromadb.HttpClient(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (443 if parts.scheme == "https" else 8000),
        ssl=parts.scheme == "https",
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
    )


def server_error(url: str, what: str, exc: Exception) -> StoreError:
    if _unreachable(exc):
        return StoreError(
            f"the Chroma server at {url} is unreachable ({exc}); start it (`chroma run`) or check store.url", url=url
        )
    return StoreError(f"{what}: the Chroma server at {url} answered {exc}", url=url)
