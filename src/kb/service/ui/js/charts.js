// Line charts in SVG, drawn at the width of their box (and again when it changes), so text
// stays legible from a phone to a wide screen. A bucket without a value is a gap in the
// line; each value is a dot whose tooltip names its time and value. Colours come from the
// stylesheet (classes s1..s4), so light and dark follow the system.

import { h, s } from "./dom.js";

const HEIGHT = 190;
const M = { top: 12, right: 14, bottom: 26, left: 52 };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** How a bucket's time reads under the axis: hours within a day or two, days beyond. */
export function timeLabel(date, spanS) {
  if (spanS <= 36 * 3600) return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (spanS <= 8 * 86400) return date.toLocaleString(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function segments(values, x, y) {
  const paths = [];
  let current = "";
  values.forEach((v, i) => {
    if (v == null) {
      if (current) paths.push(current);
      current = "";
      return;
    }
    current += `${current ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  });
  if (current) paths.push(current);
  return paths;
}

/**
 * Draws into `box`: {times: Date[], bucketS, series: [{name, values, cls, dashed}],
 * format(v), max (a fixed top, e.g. 1 for shares), refs: [{value, label}], label}.
 */
export function lineChart(box, spec) {
  const width = Math.max(260, Math.floor(box.clientWidth || 560));
  const plotW = width - M.left - M.right;
  const plotH = HEIGHT - M.top - M.bottom;
  const n = spec.times.length;
  const all = spec.series.flatMap((x) => x.values).concat((spec.refs || []).map((r) => r.value)).filter((v) => v != null);
  let top = spec.max ?? niceMax(Math.max(0, ...all));
  if (spec.integer) top = Math.max(4, Math.ceil(top / 4) * 4); // counts: whole numbers on the axis
  const x = (i) => M.left + (n <= 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v) => M.top + plotH - (Math.min(v, top) / top) * plotH;
  const svg = s("svg", { viewBox: `0 0 ${width} ${HEIGHT}`, width, height: HEIGHT, role: "img", "aria-label": spec.label });
  svg.append(s("title", { text: spec.label }));

  const grid = s("g", { class: "grid axis", "aria-hidden": "true" });
  for (let k = 0; k <= 4; k += 1) {
    const v = (top * k) / 4;
    grid.append(
      s("line", { x1: M.left, x2: width - M.right, y1: y(v), y2: y(v) }),
      s("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end", text: spec.format(v) }),
    );
  }
  const labels = Math.max(2, Math.min(n, Math.floor(plotW / 90)));
  const spanS = n * spec.bucketS;
  for (let k = 0; k < labels && n > 0; k += 1) {
    const i = Math.round((k * (n - 1)) / Math.max(1, labels - 1));
    const anchor = k === 0 ? "start" : k === labels - 1 ? "end" : "middle";
    grid.append(s("text", { x: x(i), y: HEIGHT - 6, "text-anchor": anchor, text: timeLabel(spec.times[i], spanS) }));
  }
  svg.append(grid);

  for (const ref of spec.refs || []) {
    if (ref.value == null) continue;
    svg.append(
      s(
        "g",
        { class: "ref", "aria-hidden": "true" },
        s("line", { x1: M.left, x2: width - M.right, y1: y(ref.value), y2: y(ref.value) }),
        s("text", { x: M.left + 4, y: y(ref.value) - 4, text: ref.label }),
      ),
    );
  }

  const dots = n <= 40; // beyond, dots would bead into a second line: lone values only
  for (const line of spec.series) {
    const group = s("g", { class: `${line.cls}${line.dashed ? " dashed" : ""}` });
    for (const d of segments(line.values, x, y)) group.append(s("path", { class: "line", d }));
    line.values.forEach((v, i) => {
      const lone = v != null && line.values[i - 1] == null && line.values[i + 1] == null;
      if (v == null || (!dots && !lone)) return;
      group.append(
        s("circle", { class: "dot", cx: x(i), cy: y(v), r: lone ? 3.5 : 2.5 }, s("title", { text: `${timeLabel(spec.times[i], spanS)} · ${line.name}: ${spec.format(v)}` })),
      );
    });
    svg.append(group);
  }
  if (!all.length) {
    svg.append(s("text", { class: "empty-note", x: M.left + plotW / 2, y: M.top + plotH / 2, "text-anchor": "middle", text: "nothing recorded in this window" }));
  }
  box.replaceChildren(svg);
}

/** The same values as a table, for reading them one by one (and for screen readers). */
export function dataTable(spec) {
  const spanS = spec.times.length * spec.bucketS;
  const head = h("tr", {}, h("th", { scope: "col", text: "Time" }), spec.series.map((x) => h("th", { scope: "col", class: "num", text: x.name })));
  const rows = spec.times.map((t, i) =>
    h("tr", {}, h("th", { scope: "row", text: timeLabel(t, spanS) }), spec.series.map((x) => h("td", { class: "num", text: x.values[i] == null ? "–" : spec.format(x.values[i]) }))),
  );
  return h("details", {}, h("summary", { text: "Values" }), h("div", { class: "table-wrap" }, h("table", { class: "table" }, h("thead", {}, head), h("tbody", {}, rows))));
}

/** A chart with its caption, legend and table; returns the box to draw in. */
export function chartFigure(spec) {
  const legend = h("span", { class: "legend" }, spec.series.map((x) => h("span", { class: `${x.cls}${x.dashed ? " dashed" : ""}`, text: x.name })));
  const box = h("div", { class: "plot" });
  const figure = h("figure", { class: spec.wide ? "chart wide" : "chart" }, h("figcaption", {}, h("span", { text: spec.title }), legend), box, dataTable(spec));
  return { figure, box };
}
