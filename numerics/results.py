"""Per-layer results (predicted or measured) as tidy tables, and atomic file writes."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from importlib import metadata

#: quantity name -> meaning. Layers are indexed from the input: x^0 is the data, block l outputs x^l.
QUANTITIES = {
    "q": "mean square of the pre-activation of block l's last dense layer (mean over the two inputs)",
    "c": "correlation of the two inputs' pre-activation vectors in block l",
    "p": "mean square ||x^l||^2/n of the representation x^l (mean over the two inputs)",
    "m": "mean over units of x^l (mean over the two inputs)",
    "log_gsc": "natural log of GSC(l, L) = ||dx^L/dx^l||_qm ||x^l|| / ||x^L||, geometric mean over the two inputs",
    "log_gsc_qm": "natural log of GSC(l, L) as a ratio of quadratic means over inputs (and seeds when measured)",
    "grad_corr": "correlation of the two inputs' gradients g^l = (dx^L/dx^l)^T v, one probe v shared by both",
}


def sigprop_version() -> str:
    try:
        return metadata.version("sigprop")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0+source"


def write_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never a half-written file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def rows_to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    return buf.getvalue()


def _csv_value(v):
    if isinstance(v, float):
        return repr(v)
    return v


def to_json_text(obj) -> str:
    return json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n"


def _json_default(o):
    try:
        import numpy as np
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def to_pandas(rows: list[dict]):
    """A pandas DataFrame of tidy rows (pandas is optional)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
    return pd.DataFrame(rows)
