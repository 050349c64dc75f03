"""kb as a service: the HTTP API (FastAPI on uvicorn) over the same core the CLI calls, so
the two can never disagree.

app.py builds the application; context.py holds what the routes share (the Service) and the
dependency that hands it to them; routers/ has one router per resource, openai.py speaking
the OpenAI dialect (embeddings, chat completions); uploads.py turns POST /v1/ingest into a
job; streaming.py answers as server-sent events; errors.py maps kb's errors to statuses and
HTTP-worded remedies; guards.py holds authentication, body limits and the concurrency cap;
observability.py is the Prometheus side; server.py runs it.
"""
