// Stats: the `kb stats` figures of a window (GET /v1/stats?since=...) and the same over
// time (GET /v1/stats?since=...&series=...): latency p50/p95, requests and errors, cache
// hits, tokens and cost, and drift (top-1 similarity against the baseline before the window).

import { api } from "./api.js";
import { $, NO_KB, h, ms, num, percent, say, usd } from "./dom.js";
import { chartFigure, lineChart } from "./charts.js";

// A bucket width per window: 48 to 96 points, enough to see a change, few enough to read.
const BUCKETS = { "1h": "1m", "6h": "5m", "24h": "15m", "7d": "2h", "30d": "12h" };
const WINDOWS = { "1h": "the last hour", "6h": "the last 6 hours", "24h": "the last 24 hours", "7d": "the last 7 days", "30d": "the last 30 days" };

function figure(label, value, sub, alarm) {
  return h("div", { class: `figure${alarm ? " alarm" : ""}` }, h("div", { class: "label", text: label }), h("div", { class: "value", text: value }), sub && h("div", { class: "sub", text: sub }));
}

function figures(stats) {
  const req = stats.requests || {};
  const total = Object.values(req).reduce((a, b) => a + b, 0);
  const lat = stats.latency_ms.total || {};
  const providers = Object.values(stats.providers || {});
  const tokens = providers.reduce((sum, p) => sum + (p.input_tokens || 0) + (p.output_tokens || 0), 0);
  const cost = providers.reduce((sum, p) => sum + (p.cost_usd || 0), 0);
  const d = stats.drift;
  const drift = d.drifting == null ? "–" : d.drifting ? "drifting" : "steady";
  return [
    figure("Requests", num(total), `${num(req.ask || 0)} asks, ${num(req.search || 0)} searches, ${num(req.ingest || 0)} ingests`),
    figure("Errors", num(stats.errors), total ? `${percent(stats.errors / total)} of requests` : null, stats.errors > 0),
    figure("Cache hits", percent(stats.cache.hit_rate), `${num(stats.cache.hits)} of ${num(stats.cache.asks)} asks`),
    figure("Ask latency", lat.ask ? `${ms(lat.ask.p50)}` : "–", lat.ask ? `p50; p95 ${ms(lat.ask.p95)}` : "p50"),
    figure("Search latency", lat.search ? `${ms(lat.search.p50)}` : "–", lat.search ? `p50; p95 ${ms(lat.search.p95)}` : "p50"),
    figure("Tokens and cost", num(tokens), `${usd(cost)}`),
    figure("Drift", drift, d.drifting == null ? "too few queries to compare" : `mean shift ${d.mean_shift.toFixed(3)}, KS ${d.ks == null ? "–" : d.ks.toFixed(2)}`, d.drifting === true),
  ];
}

function providerTable(stats) {
  const rows = Object.entries(stats.providers || {});
  if (!rows.length) return [];
  const cols = ["Provider", "Answers", "Tokens in", "Tokens out", "Cost", "Error rate", "Breaker"];
  return [
    h("h2", { class: "providers", text: "Providers" }),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "table" },
        h("thead", {}, h("tr", {}, cols.map((c, i) => h("th", { scope: "col", class: i && i < 6 ? "num" : "", text: c })))),
        h("tbody", {}, rows.map(([name, p]) =>
          h("tr", {}, h("th", { scope: "row", text: name }), [num(p.answers), num(p.input_tokens), num(p.output_tokens), usd(p.cost_usd), percent(p.error_rate)].map((v) => h("td", { class: "num", text: v })), h("td", { text: p.breaker || "closed" })),
        )),
      ),
    ),
  ];
}

/** The charts of a series answer: each a spec for charts.js. */
export function chartSpecs(series, windowName) {
  const b = series.buckets;
  const times = b.map((x) => new Date(x.start));
  const base = { times, bucketS: series.bucket_s };
  const pick = (f) => b.map(f);
  const msFmt = (v) => ms(v);
  const count = (v) => num(Math.round(v * 10) / 10);
  const where = `over ${windowName}`;
  return [
    { ...base, title: "Ask latency", label: `Ask latency p50 and p95 ${where}`, format: msFmt, series: [
      { name: "p50", cls: "s1", values: pick((x) => x.latency_ms.ask.p50) },
      { name: "p95", cls: "s2", dashed: true, values: pick((x) => x.latency_ms.ask.p95) } ] },
    { ...base, title: "Search latency", label: `Search latency p50 and p95 ${where}`, format: msFmt, series: [
      { name: "p50", cls: "s1", values: pick((x) => x.latency_ms.search.p50) },
      { name: "p95", cls: "s2", dashed: true, values: pick((x) => x.latency_ms.search.p95) } ] },
    { ...base, title: "Requests and errors", label: `Asks, searches, ingests and errors per bucket ${where}`, format: count, integer: true, series: [
      { name: "asks", cls: "s1", values: pick((x) => x.requests.ask) },
      { name: "searches", cls: "s3", values: pick((x) => x.requests.search) },
      { name: "ingests", cls: "s2", dashed: true, values: pick((x) => x.requests.ingest) },
      { name: "errors", cls: "s4", values: pick((x) => x.errors) } ] },
    { ...base, title: "Cache hits", label: `Share of asks answered from the cache ${where}`, format: percent, max: 1, series: [
      { name: "hit rate", cls: "s1", values: pick((x) => x.cache.hit_rate) } ] },
    { ...base, title: "Tokens", label: `Model tokens per bucket ${where}`, format: count, integer: true, series: [
      { name: "in", cls: "s1", values: pick((x) => x.usage.input_tokens) },
      { name: "out", cls: "s2", dashed: true, values: pick((x) => x.usage.output_tokens) } ] },
    { ...base, title: "Cost", label: `Model cost in US dollars per bucket ${where}`, format: usd, series: [
      { name: "USD", cls: "s3", values: pick((x) => x.usage.cost_usd) } ] },
    { ...base, wide: true, title: "Drift: top-1 similarity", label: `Mean top-1 similarity per bucket ${where}, against the baseline before it`, format: (v) => v.toFixed(2), max: 1,
      refs: [ { value: series.baseline.mean, label: `baseline ${series.baseline.mean == null ? "" : series.baseline.mean.toFixed(2)}` },
        { value: series.low_match, label: `low match ${series.low_match}` } ],
      series: [
        { name: "mean", cls: "s1", values: pick((x) => x.top1.mean) },
        { name: "share below low match", cls: "s4", dashed: true, values: pick((x) => x.top1.low_match_share) } ] },
  ];
}

export function statsView(ctx) {
  const status = $("stats-status");
  let drawn = [];
  let visible = false;
  const resized = new ResizeObserver(() => {
    if (visible) for (const { box, spec } of drawn) lineChart(box, spec);
  });

  async function load() {
    const since = $("stats-window").value;
    const windowName = WINDOWS[since];
    if (!ctx.kb()) {
      for (const id of ["stats-figures", "stats-charts", "stats-providers"]) $(id).replaceChildren();
      say(status, NO_KB);
      return;
    }
    say(status, "Reading the figures…");
    try {
      const kb = ctx.kb();
      const [stats, series] = await Promise.all([
        api("v1/stats", { params: { kb, since } }),
        api("v1/stats", { params: { kb, since, series: BUCKETS[since] } }),
      ]);
      $("stats-figures").replaceChildren(...figures(stats));
      const charts = $("stats-charts");
      charts.replaceChildren();
      drawn = chartSpecs(series, windowName).map((spec) => {
        const { figure: fig, box } = chartFigure(spec);
        charts.append(fig);
        return { box, spec };
      });
      for (const { box, spec } of drawn) lineChart(box, spec);
      $("stats-providers").replaceChildren(...providerTable(stats));
      say(status, `${windowName}, in buckets of ${BUCKETS[since]}; knowledge base ${kb || "(server default)"}`);
    } catch (error) {
      if (error.kind === "kb_not_found") {
        for (const id of ["stats-figures", "stats-charts", "stats-providers"]) $(id).replaceChildren();
        say(status, "No knowledge base yet: nothing to show.");
      } else if (error.status !== 401) say(status, error.message, "error");
    }
  }

  $("stats-window").addEventListener("change", load);
  $("stats-refresh").addEventListener("click", load);
  resized.observe($("stats-charts"));

  return {
    show() {
      visible = true;
      load();
    },
    hide() {
      visible = false;
    },
  };
}
