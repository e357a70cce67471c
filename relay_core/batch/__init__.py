"""Batch jobs: the workspace, the job lifecycle, splitting, resume and the engine.

The public names are the ones below: ``RelayClient``, ``AsyncRelayClient``,
``BatchRequest`` and ``Job`` (re-exported by :mod:`relay_core`), and
:class:`~relay_core.batch.view.WorkspaceView` with its ``ItemRow``, for reading a
workspace the jobs are writing to (a dashboard), and :mod:`.stores`, the contract of
the store holding a workspace's records (SQLite by default; a plugin may offer another,
PostgreSQL with relay-postgres). The underscored modules are internal:

- :mod:`._types`: the values a user sees (requests in, jobs out);
- :mod:`._workspace`: the directory, its store and its JSONL files;
- :mod:`._inputs`: turning what a user gives into unified requests, with errors that
  say where;
- :mod:`._provider`: a job over provider batch APIs (split, submit, find after a crash,
  poll, merge);
- :mod:`._engine`: a job run here, concurrently, for providers without a batch API;
- :mod:`._client`: ``AsyncRelayClient`` and ``RelayClient``, which tie them together;
- :mod:`.view`: the read-only ``WorkspaceView`` (public);
- :mod:`.stores`: ``WorkspaceStore`` and the SQLite store (public).

Names load on first access, like :mod:`relay_core`'s own.
"""

from typing import TYPE_CHECKING

from relay_core.lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from relay_core.batch._client import AsyncRelayClient, RelayClient
    from relay_core.batch._types import BatchRequest, Job
    from relay_core.batch.view import ItemRow, ItemState, WorkspaceView

__all__ = [
    "AsyncRelayClient",
    "BatchRequest",
    "ItemRow",
    "ItemState",
    "Job",
    "RelayClient",
    "WorkspaceView",
]

__getattr__, __dir__ = _lazy_exports(
    __name__,
    globals(),
    {
        "AsyncRelayClient": "relay_core.batch._client",
        "BatchRequest": "relay_core.batch._types",
        "ItemRow": "relay_core.batch.view",
        "ItemState": "relay_core.batch.view",
        "Job": "relay_core.batch._types",
        "RelayClient": "relay_core.batch._client",
        "WorkspaceView": "relay_core.batch.view",
    },
)
