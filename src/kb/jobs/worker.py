"""`kb worker`: runs queued jobs until stopped (Ctrl-C or SIGTERM finish the running jobs;
a kill -9 leaves them to another worker through their leases)."""

from __future__ import annotations

from collections.abc import Callable

from kb.config import Settings
from kb.jobs.runner import Runner
from kb.library import Library


def run_worker(settings: Settings, workers: int | None, say: Callable[[str], None]) -> None:
    library = Library(settings)
    home = library.home
    runner = Runner(library, home.jobs, home.queue)
    home.queue.bind(runner)
    count = workers or settings.queue.workers
    consumer = home.queue.consumer(count)
    from kb.jobs.webhooks import secret_problems

    for problem in secret_problems(settings):
        say(f"warning: {problem}")
    runner.start_reclaimer()  # first round now: jobs of a worker that died are taken over at once
    say(f"kb worker {runner.worker}: {count} job slots on the {home.queue.backend} queue; Ctrl-C stops")
    try:
        consumer.run()
    finally:
        runner.stop()
        library.close()


class EmbeddedWorker:
    """The same worker inside `kb serve --worker`, started and stopped with the server."""

    def __init__(self, library: Library, workers: int) -> None:
        self.runner = Runner(library, library.home.jobs, library.home.queue)
        library.home.queue.bind(self.runner)
        self.consumer = library.home.queue.consumer(workers, embedded=True)

    def start(self) -> None:
        self.runner.start_reclaimer()
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop(graceful=True)
        self.runner.stop()
