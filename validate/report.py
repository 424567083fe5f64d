"""A run's short Markdown report: the command that reproduces it, the settings, the agreement table, the figures.

Every command that writes a run folder (``sigprop reproduce``, ``measure --out``, ``sweep``) writes one beside its
files, named after the run (``gsc.md``, ``measure.md``, ``sweep.md``), linking the figures by their file names.

Example
-------
>>> from sigprop.validate.report import markdown_report
>>> text = markdown_report("GSC vs depth", "sigprop reproduce", {"width": 512, "seeds": 20},
...                        [("log GSC(0, L)", ["architecture", "predicted"], [["He-ReLU", 0.0]])],
...                        [("GSC(l, L)", "gsc_gsc.png")])
>>> print(text.splitlines()[0]); "| He-ReLU | 0 |" in text
# GSC vs depth
True
"""
from __future__ import annotations

import math


def _cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "n/a"}[value]
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} = {_cell(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|")


def markdown_report(title: str, command: str, settings: dict, tables: list, figures: list, notes: str = "") -> str:
    """Markdown text: ``tables`` is a list of (caption, header, rows), ``figures`` a list of (caption, file)."""
    lines = [f"# {title}", "", "Reproduce with:", "", "```bash", command, "```", "", "## Settings", ""]
    lines += [f"- **{key}**: {_cell(value)}" for key, value in settings.items()]
    for caption, header, rows in tables:
        lines += ["", f"## {caption}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    if figures:
        lines += ["", "## Figures", ""]
        for caption, name in figures:
            lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    if notes:
        lines += ["", notes]
    return "\n".join(lines).rstrip() + "\n"


def agreement_table(agree_rows, labels: dict) -> tuple:
    """(header, rows) of GSC(0, L) predicted vs measured, per architecture and width."""
    header = ["architecture", "width", "aggregation", "mean field", "at width n", "measured", "95% interval",
              "|Δ| (mean field)", "in interval (mean field / at width n)", "excluded"]
    rows = [[labels.get(r["architecture"], r["architecture"]), r["width"], r.get("aggregation"), r["predicted"],
             r.get("corrected"), r["measured_mean"], f"[{_cell(r['measured_lo'])}, {_cell(r['measured_hi'])}]",
             r["abs_error"], f"{_cell(r['inside'])} / {_cell(r.get('corrected_inside'))}", r["n_excluded"]]
            for r in agree_rows]
    return header, rows
