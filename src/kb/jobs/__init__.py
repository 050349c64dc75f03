"""Background jobs: the queue, its worker, and what tells the outside world a job ended
(webhooks.py)."""
