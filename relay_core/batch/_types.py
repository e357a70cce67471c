"""What a user hands a batch job and what they get back."""

from __future__ import annotations

from typing import Any, Literal

from attrs import field, frozen

from relay_core.types import BatchCounts, Cost

__all__ = ["BatchRequest", "Job", "JobMode", "JobRef", "JobStatus", "job_id_of"]

JobMode = Literal["batch", "engine"]
JobStatus = Literal[
    "preparing",
    "submitting",
    "submitted",
    "running",
    "completed",
    "failed",
    "cancelled",
    "expired",
]
FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled", "expired"})


@frozen(kw_only=True)
class BatchRequest:
    """The short form of a batch request: one prompt, an optional system prompt.

    ``id`` becomes the request's ``custom_id``; ``model`` (an alias or
    ``provider/model``) defaults to the job's. With ``provider`` (or the job's
    ``provider=``), a bare model name is that provider's: ``model="gpt-4.1-mini",
    provider="openai"`` is ``model="openai/gpt-4.1-mini"``; a model another provider
    serves is a :class:`BatchInputError`. ``messages`` takes a conversation instead of
    ``prompt`` (one of the two): :class:`~relay_core.Message` values or role/content
    dicts in OpenAI's or Anthropic's form, as ``hub.chat(messages=...)`` does.
    ``provider_args`` are generation settings (``temperature``, ``max_tokens``...) and
    Request fields (``tools``, ``response_schema``...); anything else goes to the
    provider untouched as ``provider_kwargs``. Anything this form cannot say, a full
    :class:`Request` can.
    """

    id: str
    prompt: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    provider: str | None = None
    provider_args: dict[str, Any] = field(factory=dict)
    messages: list[Any] | None = None


@frozen(kw_only=True)
class Job:
    """A batch job as the workspace knows it.

    ``status`` moves ``preparing`` → ``submitting`` → ``submitted`` (provider batches
    running) or ``running`` (the engine) → ``completed`` | ``failed`` | ``cancelled`` |
    ``expired``. ``interrupted`` is true when an unfinished job has no live worker (its
    process died): :meth:`RelayClient.resume` continues it. ``counts`` are the latest
    known; ``cost`` is the total once results are on disk, with the batch discount
    where the provider gives one. ``runner`` names who answers an engine job: ``engine``
    (this process) or a plugin's runner (``ray``). Times are Unix seconds.
    """

    job_id: str
    status: JobStatus
    mode: JobMode
    n_requests: int
    submitted_at: float
    updated_at: float
    finished_at: float | None = None
    description: str | None = None
    model: str | None = None
    providers: tuple[str, ...] = ()
    provider_batches: tuple[str, ...] = ()
    counts: BatchCounts = field(factory=BatchCounts)
    cost: Cost = field(factory=Cost)
    has_results: bool = False
    interrupted: bool = False
    error: str | None = None
    runner: str | None = None

    @property
    def done(self) -> bool:
        """The job has finished, whatever the outcome."""
        return self.status in FINISHED


JobRef = str | Job
"""A job id, or a :class:`Job` as ``list_jobs`` returns it: every client method taking a
job accepts either, so ``for job in client.list_jobs(): client.get_job(job)`` works."""


def job_id_of(job: JobRef) -> str:
    """The id of ``job`` (a :class:`Job` or its id)."""
    return job.job_id if isinstance(job, Job) else job
