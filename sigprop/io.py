"""Files: atomic writes with normal permissions, strict JSON, CSV, and the staged output folder of a run.

- Every file is written to a temporary name in its folder and renamed into place: an interrupted write never
  leaves a half-written file, and the temporary file is removed.
- JSON is strict (RFC 8259): a non-finite number (a mean square beyond float64, an undefined statistic) is
  written as ``null``; the logarithms that stay finite are written beside it where they exist.
- :class:`RunOutput` stages all files of one run in a hidden folder and moves them into place together when
  the run succeeds, with a manifest (its JSON) naming each file and its SHA-256: the files in a folder belong to
  one run, and files an earlier run left there under the same name are removed.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import uuid


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path, data) -> None:
    """Write ``data`` (str or bytes) to ``path`` through a temporary file and a rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def finite_or_none(obj):
    """``obj`` with every non-finite float (and numpy scalar/array element) replaced by None, for strict JSON."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None:
        if isinstance(obj, np.ndarray):
            return [finite_or_none(v) for v in obj.tolist()]
        if isinstance(obj, np.generic):
            obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def to_json_text(obj) -> str:
    """Strict JSON (non-finite numbers become null)."""
    return json.dumps(finite_or_none(obj), indent=2, allow_nan=False) + "\n"


def rows_to_csv(rows: list[dict], columns: list[str]) -> str:
    """CSV of tidy rows; floats at full precision, non-finite or missing values as empty cells."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    return buf.getvalue()


def _csv_value(v):
    if hasattr(v, "item") and not isinstance(v, (list, dict)):
        v = v.item()
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return "" if v is None else v


def to_pandas(rows: list[dict]):
    """A pandas DataFrame of tidy rows (pandas is optional)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
    return pd.DataFrame(rows)


def check_output_folder(path) -> str:
    """Raise ValueError (naming ``out``) unless ``path`` is, or can be made, a writable folder. Creates it."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"out={path!r} is not allowed: it is an existing file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"out={path!r} is not allowed: cannot write there ({exc.strerror or exc})") from None
    return path


class RunOutput:
    """The files of one run, staged and moved into ``folder`` together (use as a context manager).

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> with RunOutput(folder, "demo") as run:
    ...     run.write("demo.csv", "a,b\\n1,2\\n")
    ...     files = run.commit({"note": "example"})
    >>> sorted(os.listdir(folder))
    ['demo.csv', 'demo.json']
    """

    def __init__(self, folder, stem: str):
        self.folder = check_output_folder(folder)
        self.stem = stem
        self.run_id = uuid.uuid4().hex[:12]
        self.staging = os.path.join(self.folder, f".{stem}-run-{self.run_id}.tmp")
        os.makedirs(self.staging)
        self.names: list[str] = []

    def path(self, name: str) -> str:
        """Where to write file ``name`` of this run (inside the staging folder)."""
        if name not in self.names:
            self.names.append(name)
        return os.path.join(self.staging, name)

    def write(self, name: str, data) -> None:
        write_atomic(self.path(name), data)

    def commit(self, manifest: dict) -> list[str]:
        """Move the staged files into place, remove the files of this stem's previous run that this run did not
        write, and write ``<stem>.json``: ``manifest`` plus the run id and each file's SHA-256. Returns the
        final paths (the JSON last)."""
        for name in self.names:
            os.chmod(os.path.join(self.staging, name), _file_mode())
        hashes = {name: _sha256(os.path.join(self.staging, name)) for name in self.names}
        json_name = f"{self.stem}.json"
        previous = self._previous_files()
        for name in previous - set(self.names) - {json_name}:
            target = os.path.join(self.folder, name)
            if os.path.isfile(target):
                os.unlink(target)
        finals = []
        for name in self.names:
            final = os.path.join(self.folder, name)
            os.replace(os.path.join(self.staging, name), final)
            finals.append(final)
        final_json = os.path.join(self.folder, json_name)
        finals.append(final_json)
        record = {**manifest, "run_id": self.run_id, "files": {n: {"sha256": h} for n, h in hashes.items()}}
        write_atomic(final_json, to_json_text(record))
        shutil.rmtree(self.staging, ignore_errors=True)
        return finals

    def _previous_files(self) -> set:
        try:
            with open(os.path.join(self.folder, f"{self.stem}.json")) as fh:
                files = json.load(fh).get("files", {})
            return {n for n in files if os.path.basename(n) == n}
        except (OSError, ValueError, AttributeError):
            return set()

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.discard()        # after a commit the staging folder is gone already
        return False


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
