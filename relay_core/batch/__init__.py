"""Batch jobs: the workspace, the job lifecycle, splitting, resume and the engine.

The public names (``RelayClient``, ``AsyncRelayClient``, ``BatchRequest``, ``Job``) are
re-exported by :mod:`relay_core`; the modules here are internal:

- :mod:`._types`: the values a user sees (requests in, jobs out);
- :mod:`._workspace`: the directory, its SQLite database and its JSONL files;
- :mod:`._inputs`: turning what a user gives into unified requests, with errors that
  say where;
- :mod:`._provider`: a job over provider batch APIs (split, submit, find after a crash,
  poll, merge);
- :mod:`._engine`: a job run here, concurrently, for providers without a batch API;
- :mod:`._client`: ``AsyncRelayClient`` and ``RelayClient``, which tie them together.
"""
