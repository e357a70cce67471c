"""relay-ray: engine jobs answered as shards on a Ray cluster.

This module only registers the job runner ``ray``; Ray itself (big, slow to import) is
imported when a job runs (``relay_ray.runner``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from relay_core.plugin import hookimpl

if TYPE_CHECKING:
    from relay_core.plugin import JobRun

__all__ = ["run"]

__version__ = "0.1.0"


async def run(job: JobRun) -> None:
    """Answer ``job`` on the Ray cluster its options name (see :mod:`relay_ray.runner`)."""
    from relay_ray.runner import run_on_ray

    await run_on_ray(job)


@hookimpl
def relay_register_job_runners(register: Callable[..., object]) -> None:
    register("ray", run)
