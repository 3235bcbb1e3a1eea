// Tiny SVG charts (no library): bars per version, and point estimates with intervals.
import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * Horizontal bars: one row per label. Described for screen readers by a table beside it.
 * @param {string} title
 * @param {{label: string, value: number|null, lo?: number, hi?: number}[]} rows
 */
export function intervalChart(title, rows) {
  const present = rows.filter((r) => typeof r.value === "number");
  const figure = h("figure.chart");
  const values = present.flatMap((r) => [r.value, r.lo ?? r.value, r.hi ?? r.value, 0]);
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min || 1;
  const width = 320;
  const left = 110;
  const rowH = 22;
  const height = rows.length * rowH + 10;
  const x = (v) => left + ((v - min) / span) * (width - left - 10);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart-svg" });
  if (present.length) chart.append(svg("line", { x1: x(0), x2: x(0), y1: 0, y2: height, class: "axis" }));
  rows.forEach((r, i) => {
    const y = i * rowH + 16;
    chart.append(svg("text", { x: 4, y, class: "label" }, r.label.slice(0, 16)));
    if (typeof r.value !== "number") return;
    chart.append(svg("rect", { x: Math.min(x(0), x(r.value)), y: y - 10, width: Math.max(1, Math.abs(x(r.value) - x(0))), height: 12, class: "bar" }));
    if (typeof r.lo === "number" && typeof r.hi === "number") {
      chart.append(svg("line", { x1: x(r.lo), x2: x(r.hi), y1: y - 4, y2: y - 4, class: "ci" }));
      chart.append(svg("line", { x1: x(r.lo), x2: x(r.lo), y1: y - 8, y2: y, class: "ci" }));
      chart.append(svg("line", { x1: x(r.hi), x2: x(r.hi), y1: y - 8, y2: y, class: "ci" }));
    }
  });
  figure.append(chart, h("figcaption", { text: title }));
  return figure;
}
