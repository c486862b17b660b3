"""Runs as DataFrames: a run made by the CLI, read back through mesalab.open_store."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import mesalab

from conftest import run

# The cheapest real run: icl-gd in quick mode, shrunk to ~1 s (the numbers are meaningless; the
# point is that what the CLI stored is what the DataFrames show).
TINY = [
    "train.steps=60", "train.batch_size=128", "train.eval_every=20", "eval.validation_tasks=500",
    "eval.fit_tasks=500", "eval.ood_tasks=200", "eval.sensitivity_tasks=200", "inside.probe_tasks=400",
    "inside.patch_tasks=100",
]


def cli_run(mesalab_bin, store: Path, out: Path, seed: int = 0):
    args = [mesalab_bin, "run", "icl-gd", "--quick", "--seeds", 2, "--seed", seed, "--store", store, "--out", out]
    for s in TINY:
        args += ["--set", s]
    done = run(args)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory, mesalab_bin):
    root = tmp_path_factory.mktemp("store")
    store = root / "mesalab.sqlite"
    run_dir = cli_run(mesalab_bin, store, root / "run-a")
    return store, run_dir


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw(store: Path):
    """An independent reader: Python's sqlite3, read-only."""
    return sqlite3.connect(f"file:{store}?mode=ro", uri=True)


def test_runs_match_summary_json(made):
    store, run_dir = made
    summary = json.loads((run_dir / "summary.json").read_text())
    runs = mesalab.open_store(store).runs()
    assert len(runs) == 1
    r = runs.iloc[0]
    assert r.run_id == summary["run_id"] and r.experiment == summary["experiment"] == "icl-gd"
    assert r.status == "finished" and bool(r.quick) is True and r.seeds == [0, 1]
    assert r.code_revision == summary["code_revision"]
    assert r.started_at == pd.Timestamp(summary["started_at"])
    assert Path(r.run_dir) == run_dir.resolve()
    assert 'experiment = "icl-gd"' in r.config_toml and "steps = 60" in r.config_toml


def test_metrics_are_every_stored_sample(made):
    store, _ = made
    df = mesalab.open_store(store).metrics()
    with raw(store) as db:
        # The store returns each run's samples ordered by name, seed (aggregates first), step, logging order.
        rows = db.execute(
            "SELECT run_id, seed, step, name, value FROM metrics ORDER BY run_id, name, seed, step, rowid"
        ).fetchall()
    assert len(df) == len(rows) > 0
    assert list(df.columns) == ["run_id", "seed", "step", "name", "value"]
    for (run_id, seed, step, name, value), got in zip(rows, df.itertuples(index=False)):
        assert (got.run_id, got.step, got.name) == (run_id, step, name)
        assert (got.seed is pd.NA) if seed is None else got.seed == seed
        assert math.isnan(got.value) if value is None else got.value == value
    assert set(df["seed"].dropna()) == {0, 1}
    assert {"train_loss", "val_loss"} <= set(df["name"])


def test_tables_and_json_are_the_stored_ones(made):
    store, _ = made
    s = mesalab.open_store(store)
    tables = s.tables()
    with raw(store) as db:
        stored = {name: (json.loads(c), json.loads(r)) for name, c, r in db.execute("SELECT name, columns, rows FROM result_tables")}
        summary_text = db.execute("SELECT value FROM result_json WHERE name = 'summary'").fetchone()[0]
    assert set(tables) == set(stored) and "baselines" in tables
    for name, (columns, rows) in stored.items():
        assert list(tables[name].columns) == columns
        pd.testing.assert_frame_equal(tables[name], pd.DataFrame(rows, columns=columns))
        assert len(tables[name]) == len(rows)
    assert s.json("summary") == json.loads(summary_text)
    with pytest.raises(KeyError, match="no table `nope`; its tables: baselines"):
        s.table("nope")


def test_verdicts_and_summary_round_trip(made):
    store, run_dir = made
    s = mesalab.open_store(store)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert s.summary() == summary == s.summary(run_dir) == s.summary(summary["run_id"])
    v = s.verdicts()
    checks = summary["verdict"]["checks"]
    assert list(v["check"]) == [c["name"] for c in checks]
    assert list(v["pass"]) == [c["pass"] for c in checks]
    assert list(v["threshold"]) == [c["threshold"] for c in checks]
    for got, c in zip(v["value"], checks):
        assert (math.isnan(got) and c["value"] is None) or got == c["value"]
    assert [None if x is pd.NA else int(x) for x in v["worst_seed"]] == [c["worst_seed"] for c in checks]
    assert set(v["answer"]) == {summary["verdict"]["answer"]} and set(v["claim"]) == {summary["verdict"]["claim"]}
    arts = s.artifacts()
    assert {"summary.json", "report.html"} <= set(arts["path"])


def test_reading_never_writes_and_runs_by_directory(made, mesalab_bin, tmp_path):
    store, run_dir = made
    before = {p.name: sha(p) for p in store.parent.glob("mesalab.sqlite*")}
    s = mesalab.open_store(store)
    s.runs(), s.metrics(), s.tables(), s.verdicts(), s.summary(), s.artifacts()
    assert {p.name: sha(p) for p in store.parent.glob("mesalab.sqlite*")} == before
    assert s.run_id(run_dir) == s.run_id() == s.run_id(str(run_dir))
    with pytest.raises(mesalab.StoreError, match="no run 99"):
        s.metrics(99)
    with pytest.raises(mesalab.StoreError, match="no run whose directory"):
        s.summary(tmp_path)

    # A second CLI run into a copy, with a reader open on it: the reader does not block the writer
    # and sees the new run.
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(store.read_bytes())
    reader = mesalab.open_store(copy)
    assert len(reader.runs()) == 1
    cli_run(mesalab_bin, copy, tmp_path / "run-b", seed=5)
    runs = reader.runs()
    assert len(runs) == 2 and list(runs["seeds"]) == [[5, 6], [0, 1]]
    assert set(reader.metrics()["run_id"]) == set(runs["run_id"])


def test_bad_store_paths_are_store_errors(tmp_path):
    missing = tmp_path / "none.sqlite"
    with pytest.raises(mesalab.StoreError, match="no store file"):
        mesalab.open_store(missing)
    assert not missing.exists()
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database, just some text that is long enough to look like a header\n" * 4)
    with pytest.raises(mesalab.StoreError, match="not a mesalab store"):
        mesalab.open_store(text)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(mesalab.StoreError, match="another program"):
        mesalab.open_store(foreign)
