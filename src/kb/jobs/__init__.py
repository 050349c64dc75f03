"""Background jobs: ingests that run on a worker while the caller goes on.

store.py keeps each job's record (the source of truth for its state); queue.py carries job
ids to workers through huey (SQLite under KB_HOME, or Redis); runner.py runs a job with a
lease that another worker takes over if this one dies; webhooks.py tells others, signed,
that a job ended. The worker itself is a front-end (kb/worker.py).
"""
