"""Writes docs/api.md, the HTTP API's reference, from the OpenAPI document kb serve publishes
(and the scope each route needs). tests/service/test_api_reference.py fails when the two
differ, so the reference cannot drift:

    python scripts/api_reference.py           # rewrite docs/api.md
    python scripts/api_reference.py --check   # exit 1 if docs/api.md is not current
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "api.md"
HEADER = """# HTTP API reference

Generated from the OpenAPI document of `kb serve` by `scripts/api_reference.py`; a test
keeps it current. The document itself is served at `/openapi.json`, with Swagger UI at
`/docs` and ReDoc at `/redoc` (no token needed, no network: their assets ship with kb).
Errors are `{"error": {"kind", "message", "details", "type", "param", "code"}}` on every
route; README's "Security" section says what each scope may do.
"""


def _scopes(app: Any) -> dict[tuple[str, str], str]:
    out = {}
    for router in app.state.kb_routers:
        for route in router.routes:
            scope = next((getattr(d.call, "scope", None) for d in route.dependant.dependencies
                          if getattr(d.call, "scope", None)), None)  # fmt: skip
            for method in route.methods:
                out[(method, route.path)] = scope or "none"
    return out


def _fields(schema: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    options = schema.get("oneOf") or schema.get("anyOf")
    if options and "properties" not in schema:
        return [" | ".join(", ".join(_fields(o, spec)) or "…" for o in options)]
    required = set(schema.get("required", []))
    return [f"`{name}`" + ("" if name in required else "?") for name in schema.get("properties", {})]


def render() -> str:
    from kb.config import load_settings
    from kb.service.app import create_app

    with tempfile.TemporaryDirectory() as home:
        app = create_app(load_settings(home=home)).app
        spec = app.openapi()
        scopes = _scopes(app)
    lines = [HEADER, "| method | path | token scope | what it does | answers |", "| --- | --- | --- | --- | --- |"]
    details = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            summary = (op.get("description") or op.get("summary") or "").split("\n")[0].strip()
            statuses = ", ".join(sorted(op["responses"]))
            scope = scopes.get((method.upper(), path), "none")
            lines.append(f"| {method.upper()} | `{path}` | {scope} | {summary} | {statuses} |")
            body = op.get("requestBody", {}).get("content", {})
            parts = [f"- **{method.upper()} {path}**"]
            for media, content in body.items():
                parts.append(f"  - body ({media}): {', '.join(_fields(content.get('schema', {}), spec))}")
            params = [f"`{p['name']}`" + ("" if p.get("required") else "?") for p in op.get("parameters", [])]
            if params:
                parts.append(f"  - parameters: {', '.join(params)}")
            ok = next((op["responses"][s] for s in ("200", "201", "202") if s in op["responses"]), {})
            schema = ok.get("content", {}).get("application/json", {}).get("schema")
            if schema:
                parts.append(f"  - answer: {', '.join(_fields(schema, spec)) or 'JSON'}")
            details.append("\n".join(parts))
    return (
        "\n".join(lines) + "\n\n## Bodies and answers\n\n`?` marks an optional field.\n\n" + "\n".join(details) + "\n"
    )


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    text = render()
    if "--check" in sys.argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is not current; run python scripts/api_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
