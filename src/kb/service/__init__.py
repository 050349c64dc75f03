"""kb as a service: the HTTP API (FastAPI on uvicorn) over the same KnowledgeBase facade the
CLI calls, so the two can never disagree.

app.py builds the application and its routes; openai_api.py speaks the OpenAI dialect
(embeddings, chat completions); errors.py maps kb's errors to statuses; guards.py holds
authentication, body limits and the concurrency cap; micro-batching encodes concurrent
queries together (kb.embedding.batching); observability.py is the Prometheus side; server.py runs it.
"""
