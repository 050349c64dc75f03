"""`kb worker` and `kb serve --worker`: a front-end that runs queued jobs until stopped.

Ctrl-C or SIGTERM finish the running jobs; a kill -9 leaves them to another worker through
their leases (jobs/runner.py). The worker binds the queue to a Runner that does each job's
work through the Library, as any other front-end calls the core.
"""

from __future__ import annotations

from collections.abc import Callable

from kb.config import Settings
from kb.jobs.runner import Runner
from kb.library import Library


def _runner(library: Library) -> Runner:
    home = library.home
    runner = Runner(library, home.jobs, home.queue, library.settings)
    home.queue.bind(runner)
    return runner


def run_worker(settings: Settings, workers: int | None, say: Callable[[str], None]) -> None:
    from kb.jobs.webhooks import secret_problems

    library = Library(settings, long_lived=True)
    runner = _runner(library)
    queue = library.home.queue
    count = workers or settings.queue.workers
    consumer = queue.consumer(count)
    for problem in secret_problems(settings):
        say(f"warning: {problem}")
    if settings.embedding.kind == "local":  # loaded now, not inside the first job's time
        library.home.embedder.embed(["kb worker starting"])
    runner.start_reclaimer()  # first round now: jobs of a worker that died are taken over at once
    say(
        f"kb worker {runner.worker}: {count} job slots on the {queue.backend} queue, {_encoder(settings)}; Ctrl-C stops"
    )
    try:
        consumer.run()
    finally:
        runner.stop()
        library.close()


def _encoder(settings: Settings) -> str:
    """Where this worker's embeddings come from, for its start-up line."""
    if settings.embedding.kind == "openai":
        return f"embeddings from {settings.embedding.base_url}"
    from kb.concurrency import cpu_threads

    return f"{settings.embedding.threads or cpu_threads()} encoder threads"


class EmbeddedWorker:
    """The same worker inside `kb serve --worker`, started and stopped with the server."""

    def __init__(self, library: Library, workers: int) -> None:
        self.runner = _runner(library)
        self.consumer = library.home.queue.consumer(workers, embedded=True)

    def start(self) -> None:
        self.runner.start_reclaimer()
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop(graceful=True)
        self.runner.stop()
