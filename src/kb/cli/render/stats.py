"""`kb stats`: requests, cache, latency, providers, drift; and `--series`, the same over time."""

from __future__ import annotations

from kb.cli.render import fmt, out, table


def stats(data: dict) -> None:
    from rich.table import Table

    req = ", ".join(f"{n} {k}" for k, n in data["requests"].items()) or "none"
    cache = data["cache"]
    out.print(f"[bold]requests[/] {req}; {data['errors']} with errors")
    out.print(
        f"[bold]cache[/] {cache['hits']} of {cache['asks']} asks answered from cache (hit rate {fmt(cache['hit_rate'])})"
    )
    lat = Table(title="latency (ms)", title_justify="left")
    for col in ("stage", "request", "n", "p50", "p95", "p99"):
        lat.add_column(col)
    for stage, kinds in data["latency_ms"].items():
        for kind, v in kinds.items():
            if v["n"]:
                lat.add_row(stage, kind, str(v["n"]), fmt(v["p50"]), fmt(v["p95"]), fmt(v["p99"]))
    out.print(lat)
    prov = Table(title="providers", title_justify="left")
    for col in ("provider", "answers", "tokens in", "tokens out", "cost $", "attempts", "error rate", "breaker"):
        prov.add_column(col)
    for name, p in data["providers"].items():
        prov.add_row(
            name,
            fmt(p.get("answers")),
            fmt(p.get("input_tokens")),
            fmt(p.get("output_tokens")),
            fmt(p.get("cost_usd")),
            fmt(p.get("attempts")),
            fmt(p.get("error_rate")),
            p.get("breaker", "closed"),
        )
    out.print(prov)
    r = data.get("reranker")
    if r:
        lat = r["latency_ms"]
        out.print(
            f"[bold]reranker[/] {r['reranked']} of {r['calls']} searches reranked (p50 {fmt(lat['p50'])} ms, "
            f"p95 {fmt(lat['p95'])} ms); {r['fell_back']} fell back to the fused order"
            + (f" ({', '.join(f'{n} {kind}' for kind, n in r['failures'].items())})" if r["failures"] else "")
            + f"; breaker {r['breaker']}"
        )
    d = data["drift"]
    r, b = d["recent"], d["baseline"]
    out.print(
        f"[bold]drift[/] top-1 similarity: recent mean {fmt(r['mean'])} (n={r['n']}), baseline mean "
        f"{fmt(b['mean'])} (n={b['n']}), shift {fmt(d['mean_shift'])}, KS {fmt(d['ks'])}; "
        f"share below {d['low_match']}: recent {fmt(r['low_match_share'])}, baseline {fmt(b['low_match_share'])}"
        + ("; [bold red]drifting[/]" if d["drifting"] else "")
    )


def series(data: dict) -> None:
    """One row per bucket; the empty ones too, so that a gap reads as a gap."""
    rows = []
    for b in data["buckets"]:
        lat, usage = b["latency_ms"], b["usage"]
        rows.append([b["start"][5:16].replace("T", " "), *(str(b["requests"][k]) for k in ("ask", "search", "ingest")),
                     str(b["errors"]), f"{fmt(lat['ask']['p50'])}/{fmt(lat['ask']['p95'])}",
                     f"{fmt(lat['search']['p50'])}/{fmt(lat['search']['p95'])}", fmt(b["cache"]["hit_rate"]),
                     f"{usage['input_tokens']}/{usage['output_tokens']}", fmt(usage["cost_usd"]),
                     fmt(b["top1"]["mean"])])  # fmt: skip
    columns = ["UTC", "ask", "search", "ingest", "errors", "ask p50/p95", "search p50/p95", "hit rate", "tokens in/out",
               "cost $", "top-1"]  # fmt: skip
    out.print(f"[bold]{data['since']} to {data['until']}[/], buckets of {data['bucket_s']:g}s; latency in ms")
    table(columns, rows, right=columns[1:])
    base = data["baseline"]
    out.print(f"[bold]drift baseline[/] top-1 similarity before the window: mean {fmt(base['mean'])} (n={base['n']}), "
              f"share below {data['low_match']}: {fmt(base['low_match_share'])}")  # fmt: skip
