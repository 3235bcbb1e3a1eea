"""``attune eval report RUN… --html FILE``: one self-contained HTML page for stored runs.

The page needs nothing beside it: plots are PNGs drawn with matplotlib and inlined, the
style and the filter script are inline. It shows the runs (suite, dataset, commit,
prompts, time), every aggregate per run with its change against the first run, a bar chart
of the shared aggregates and, with two runs or more, the distribution of per-case changes
of the primary metric; then the flips against the first run, and every case in a table
that a text box filters (and a box narrows to flipped cases).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # no display: render to memory
import matplotlib.pyplot as plt

from evals.compare import Comparison, compare
from evals.runs import EvalRun

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Attune eval report: {{ runs[0].suite }}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.broken td { background: #fde2e2; } tr.fixed td { background: #e2f5e2; }
.neg { color: #b00020; } .pos { color: #1b7f1b; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
#filter { width: 30em; padding: 4px; }
</style></head><body>
<h1>Eval report: {{ runs[0].suite }}</h1>
<h2>Runs</h2>
<table><tr><th></th><th>run</th><th>suite</th><th>dataset</th><th>commit</th><th>time</th>
<th>prompts</th><th>cases</th></tr>
{% for r in runs %}<tr><td>{{ "baseline" if loop.first else "run " ~ loop.index }}</td>
<td>{{ r.id }}</td><td>{{ r.suite }}</td><td>{{ r.dataset }}</td><td>{{ r.commit }}</td>
<td>{{ r.created_at }}</td>
<td>{% for k, v in r.prompts.items() %}{{ k }} {{ v }}<br>{% endfor %}</td>
<td class="num">{{ r.cases | length }}</td></tr>{% endfor %}
</table>
<h2>Figures</h2>
<table><tr><th>metric</th>{% for r in runs %}<th>{{ "baseline" if loop.first else "run "
~ loop.index }}</th>{% endfor %}</tr>
{% for name in aggregate_names %}<tr><td>{{ name }}{% if name == runs[0].primary %}
(primary){% endif %}</td>
{% for r in runs %}{% set v = r.aggregates.get(name) %}<td class="num">
{% if v is none %}-{% else %}{{ "%.4f" | format(v) }}{% if not loop.first
and runs[0].aggregates.get(name) is not none %}{% set d = v - runs[0].aggregates[name] %}
<span class="{{ 'neg' if d < 0 else 'pos' if d > 0 else '' }}">({{ "%+.4f" | format(d) }})
</span>{% endif %}{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>
{% for c in comparisons %}<p>Run {{ loop.index + 1 }} against the baseline on
{{ c.cases | length }} shared cases:
{% for m in c.metrics if m.name == runs[0].primary %}{{ m.name }}
{{ "%+.4f" | format(m.delta) }}, 95% CI [{{ "%+.4f" | format(m.ci95[0]) }},
{{ "%+.4f" | format(m.ci95[1]) }}] (paired bootstrap){% endfor %};
{{ c.flips | length }} flipped.</p>{% endfor %}
{% for title, png in plots %}<h3>{{ title }}</h3>
<img alt="{{ title }}" src="data:image/png;base64,{{ png }}">{% endfor %}
{% if flips %}<h2>Flips against the baseline</h2>
<table><tr><th>run</th><th>case</th><th>flip</th><th>change</th><th>detail</th></tr>
{% for run_no, c in flips %}<tr class="{{ c.flipped }}"><td>run {{ run_no }}</td>
<td>{{ c.id }}</td><td>{{ c.flipped }}</td><td class="num">{{ "%+.3f" | format(c.delta) }}</td>
<td>{{ c.b.detail or c.a.detail }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Cases</h2>
<p><input id="filter" placeholder="filter cases: any text in the row"
oninput="applyFilter()"> <label><input type="checkbox" id="flipsOnly" onchange="applyFilter()">
only flipped</label> <span id="shown"></span></p>
<table id="cases"><tr><th>case</th><th>detail</th>{% for r in runs %}<th>{{ runs[0].primary }}
{{ "baseline" if loop.first else "run " ~ loop.index }}</th>{% endfor %}</tr>
{% for row in case_rows %}<tr class="{{ row.flip }}" data-flip="{{ row.flip }}">
<td>{{ row.id }}</td><td>{{ row.detail }}</td>
{% for v, ok in row.cells %}<td class="num">{% if v is none %}-{% else %}{{ "%.3f" | format(v) }}
{{ "pass" if ok else "fail" }}{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>
<script>
function applyFilter() {
  const q = document.getElementById("filter").value.toLowerCase();
  const flipsOnly = document.getElementById("flipsOnly").checked;
  let shown = 0;
  for (const row of document.querySelectorAll("#cases tr[data-flip]")) {
    const ok = row.textContent.toLowerCase().includes(q) && (!flipsOnly || row.dataset.flip);
    row.style.display = ok ? "" : "none";
    shown += ok ? 1 : 0;
  }
  document.getElementById("shown").textContent = shown + " shown";
}
applyFilter();
</script>
</body></html>
"""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _aggregate_plot(runs: Sequence[EvalRun], names: Sequence[str]) -> str:
    """Grouped bars: each shared aggregate (at most 10), one bar per run."""
    shown = [n for n in names if all(n in r.aggregates for r in runs)][:10]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(shown)), 3.6))
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        xs = [j + i * width for j in range(len(shown))]
        label = "baseline" if i == 0 else f"run {i + 1}"
        ax.bar(xs, [run.aggregates[n] for n in shown], width, label=f"{label}: {run.id}")
    ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(shown))])
    ax.set_xticklabels(shown, rotation=30, ha="right")
    ax.set_title(f"{runs[0].suite}: aggregate figures")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
    return _png(fig)


def _delta_plot(comparisons: Sequence[Comparison], primary: str) -> str:
    """Histogram of per-case changes of the primary metric, per run against the baseline."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for i, c in enumerate(comparisons):
        ax.hist([d.delta for d in c.cases], bins=21, alpha=0.6, label=f"run {i + 2} - baseline")
    ax.axvline(0, color="#444", linewidth=1)
    ax.set_xlabel(f"change of {primary} per case")
    ax.set_ylabel("cases")
    ax.legend(fontsize=8)
    return _png(fig)


def render(runs: Sequence[EvalRun]) -> str:
    """The report for ``runs`` (the first is the baseline), as one HTML document.

    Raises:
        ValueError: No run given.
    """
    if not runs:
        raise ValueError("name at least one run")
    base = runs[0]
    comparisons = [compare(base, r) for r in runs[1:]]
    names = list(dict.fromkeys(n for r in runs for n in r.aggregates))
    names.sort(key=lambda n: n != base.primary)
    plots = [("Aggregate figures", _aggregate_plot(runs, names))]
    if comparisons:
        plots.append((f"Per-case change of {base.primary}", _delta_plot(comparisons, base.primary)))
    flips = [(i + 2, f) for i, c in enumerate(comparisons) for f in c.flips]
    flip_of = {f.id: f.flipped for _, f in flips}
    by_run = [{c.id: c for c in r.cases} for r in runs]
    ids = list(dict.fromkeys(c.id for r in runs for c in r.cases))
    case_rows = []
    for case in ids:
        found = [m.get(case) for m in by_run]
        first = next(c for c in found if c is not None)
        case_rows.append(
            {
                "id": case,
                "detail": first.detail,
                "flip": flip_of.get(case) or "",
                "cells": [
                    (None, False) if c is None else (c.metrics.get(base.primary), c.passed)
                    for c in found
                ],
            }
        )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        runs=runs,
        aggregate_names=names,
        comparisons=comparisons,
        plots=plots,
        flips=flips,
        case_rows=case_rows,
    )
