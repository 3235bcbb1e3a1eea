"""Evaluation: suites, their datasets, stored runs, and benchmarks.

The suites live in ``evals/suites/<name>/``, their datasets in ``evals/data/``, the stored
runs and their comparison in ``runs``, ``compare`` and ``report_html``, and the benchmarks
in ``evals/bench/``.
"""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().with_name("data")
"""The versioned datasets the suites read (shipped with the package)."""
