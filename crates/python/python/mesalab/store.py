"""A mesalab run store (the CLI's SQLite file) as pandas DataFrames, opened read-only.

The store is read through mesalab's own Rust store crate with SQLite's read-only flag, so nothing
here can modify it, even while the CLI is writing to it. A run is named by its id (``int``), by
its run directory (``str`` / ``os.PathLike``), or left out for the newest run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd

from . import _native

StoreError = _native.StoreError

RunRef = Union[int, str, "os.PathLike[str]", None]

RUN_COLUMNS = [
    "run_id", "experiment", "status", "quick", "seeds", "code_revision", "run_dir",
    "started_at", "ended_at", "error", "pid", "config_toml",
]
VERDICT_COLUMNS = [
    "run_id", "experiment", "claim", "answer", "holds", "compared_with",
    "check", "value", "threshold", "aggregation", "worst_seed", "pass",
]


def open_store(path: str | os.PathLike[str]) -> Store:
    """Opens the store file at ``path`` read-only (``StoreError`` if it is missing or not a store)."""
    return Store(path)


def _aggregation(a: Any) -> str:
    if isinstance(a, dict):
        return ", ".join(f"{k}={v}" for k, v in a.items())
    return str(a)


class Store:
    """Read-only view of a store: ``runs()``, ``metrics()``, ``tables()``, ``verdicts()``, ``summary()``."""

    def __init__(self, path: str | os.PathLike[str]):
        self._r = _native.StoreReader(os.fspath(path))

    @property
    def path(self) -> Path:
        return Path(self._r.path)

    def __repr__(self) -> str:
        return f"mesalab.Store({str(self.path)!r})"

    def run_id(self, run: RunRef = None) -> int:
        """The id of ``run``: an id (checked), a run directory, or None for the newest run."""
        if run is None:
            rows = self._r.runs()
            if not rows:
                raise StoreError(f"the store {self.path} has no runs")
            return rows[0][0]
        if isinstance(run, (int, np.integer)) and not isinstance(run, bool):
            if int(run) not in {r[0] for r in self._r.runs()}:
                raise StoreError(f"the store {self.path} has no run {int(run)}; runs().run_id lists them")
            return int(run)
        if isinstance(run, (str, os.PathLike)):
            found = self._r.run_by_dir(os.fspath(run))
            if found is None:
                raise StoreError(f"the store {self.path} has no run whose directory is {os.fspath(run)}")
            return found
        raise TypeError(f"a run is an int id, a run directory or None, not {type(run).__name__}")

    def runs(self) -> pd.DataFrame:
        """One row per run, newest first; times are UTC timestamps."""
        df = pd.DataFrame(self._r.runs(), columns=RUN_COLUMNS)
        for col in ("started_at", "ended_at"):
            df[col] = pd.to_datetime(df[col].astype("Float64"), unit="ms", utc=True)
        df["pid"] = df["pid"].astype("Int64")
        return df

    def metrics(self, run: RunRef | bool = None) -> pd.DataFrame:
        """Every metric sample (long format: run_id, seed, step, name, value) of ``run``, or of all
        runs when ``run`` is None, each run's samples ordered by name, seed (aggregates first), step.
        ``seed`` is <NA> for cross-seed aggregates; NaN values stay NaN."""
        ids = [r[0] for r in self._r.runs()] if run is None else [self.run_id(run)]
        frames = []
        for rid in ids:
            seeds, steps, names, values = self._r.metrics(rid)
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": np.full(len(steps), rid, dtype=np.int64),
                        "seed": pd.array(seeds, dtype="UInt64"),
                        "step": np.asarray(steps, dtype=np.int64),
                        "name": pd.array(names, dtype=object),
                        "value": np.asarray(values, dtype=np.float64),
                    }
                )
            )
        if not frames:
            return pd.DataFrame({"run_id": [], "seed": pd.array([], dtype="UInt64"), "step": [], "name": [], "value": []})
        return pd.concat(frames, ignore_index=True)

    def table_names(self, run: RunRef = None) -> list[str]:
        return list(self._r.table_names(self.run_id(run)))

    def table(self, name: str, run: RunRef = None) -> pd.DataFrame:
        """Result table ``name`` of ``run`` (KeyError listing the run's tables if it has none such)."""
        rid = self.run_id(run)
        got = self._r.table(rid, name)
        if got is None:
            raise KeyError(f"run {rid} has no table `{name}`; its tables: {', '.join(self._r.table_names(rid)) or 'none'}")
        columns, rows = got
        return pd.DataFrame(json.loads(rows), columns=json.loads(columns))

    def tables(self, run: RunRef = None) -> dict[str, pd.DataFrame]:
        """Every result table of ``run``, by name."""
        rid = self.run_id(run)
        return {name: self.table(name, rid) for name in self._r.table_names(rid)}

    def json_names(self, run: RunRef = None) -> list[str]:
        return list(self._r.json_names(self.run_id(run)))

    def json(self, name: str, run: RunRef = None) -> Any:
        """The JSON result ``name`` of ``run`` as Python data (KeyError if it has none such)."""
        rid = self.run_id(run)
        text = self._r.json(rid, name)
        if text is None:
            raise KeyError(f"run {rid} has no JSON result `{name}`; it has: {', '.join(self._r.json_names(rid)) or 'none'}")
        return json.loads(text)

    def summary(self, run: RunRef = None) -> dict[str, Any]:
        """The run's ``summary.json`` (its run directory's file; the store's copy if the file is gone)."""
        rid = self.run_id(run)
        run_dir = next(r[6] for r in self._r.runs() if r[0] == rid)
        path = Path(run_dir) / "summary.json"
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        return self.json("summary", rid)

    def verdicts(self, run: RunRef | bool = None) -> pd.DataFrame:
        """One row per verdict check (claim, answer, value, threshold, aggregation, worst seed,
        pass) of ``run``, or of every run that has a verdict when ``run`` is None."""
        runs = self._r.runs()
        ids = [r[0] for r in runs] if run is None else [self.run_id(run)]
        experiment = {r[0]: r[1] for r in runs}
        rows = []
        for rid in ids:
            text = self._r.json(rid, "summary") if "summary" in self._r.json_names(rid) else None
            verdict = json.loads(text).get("verdict") if text else None
            if not verdict:
                continue
            for c in verdict.get("checks", []):
                value = c.get("value")
                rows.append(
                    [
                        rid, experiment[rid], verdict.get("claim"), verdict.get("answer"), verdict.get("holds"),
                        verdict.get("compared_with"), c.get("name"), np.nan if value is None else float(value),
                        c.get("threshold"), _aggregation(c.get("aggregation")), c.get("worst_seed"), c.get("pass"),
                    ]
                )
        df = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
        df["worst_seed"] = df["worst_seed"].astype("UInt64")
        df["value"] = df["value"].astype(np.float64)
        return df

    def artifacts(self, run: RunRef = None) -> pd.DataFrame:
        """The files a run recorded (name, kind, path relative to its run directory, size, sha256)."""
        rows = self._r.artifacts(self.run_id(run))
        df = pd.DataFrame(rows, columns=["name", "kind", "path", "size_bytes", "sha256", "created_at"])
        df["size_bytes"] = df["size_bytes"].astype("UInt64")
        df["created_at"] = pd.to_datetime(df["created_at"].astype("Float64"), unit="ms", utc=True)
        return df
