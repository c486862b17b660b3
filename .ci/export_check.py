"""`mesalab export` read back by pandas, checked against the store itself (read with sqlite3).

usage: export_check.py STORE.sqlite EXPORT_DIR   (EXPORT_DIR holds runs/metrics/tables in csv, jsonl
and parquet). Every format must give the same rows as the store, with the documented column types.
"""

import json
import math
import sqlite3
import sys

import pandas as pd

store, out = sys.argv[1], sys.argv[2]
db = sqlite3.connect(store)


def u64(x):
    return None if x is None else x & 0xFFFF_FFFF_FFFF_FFFF


runs = {r[0]: r for r in db.execute("SELECT id, uid, experiment, status, quick, seeds, run_dir, config_toml FROM runs")}
metrics = sorted(
    (run_id, u64(seed), step, name, value)
    for run_id, seed, step, name, value in db.execute("SELECT run_id, seed, step, name, value FROM metrics")
)
cells = []
for run_id, name, columns, rows in db.execute("SELECT run_id, name, columns, rows FROM result_tables"):
    columns = json.loads(columns)
    for i, row in enumerate(json.loads(rows)):
        for j, cell in enumerate(row):
            cells.append((run_id, name, i, columns[j], cell))
cells.sort(key=lambda c: (c[0], c[1], c[2], c[3]))


def read(kind, fmt):
    path = f"{out}/{kind}.{fmt}"
    if fmt == "csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    if fmt == "jsonl":
        # precise_float: pandas otherwise parses floats with a faster, lossy routine.
        return pd.read_json(path, lines=True, dtype=False, precise_float=True)
    return pd.read_parquet(path)


def same_float(a, b):
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and not (isinstance(b, float) and math.isnan(b)) and float(a) == float(b)


for fmt in ["csv", "jsonl", "parquet"]:
    r = read("runs", fmt)
    assert list(r.columns[:4]) == ["run_id", "uid", "experiment", "status"], list(r.columns)
    assert len(r) == len(runs), (fmt, len(r), len(runs))
    for row in r.itertuples():
        ref = runs[int(row.run_id)]
        assert (row.uid, row.experiment, row.status) == ref[1:4], (fmt, row)
        assert bool(row.quick) == bool(ref[4]) and json.loads(row.seeds) == json.loads(ref[5]), (fmt, row)
        assert row.run_dir == ref[6] and row.config_toml == ref[7], fmt

    m = read("metrics", fmt)
    assert list(m.columns) == ["run_id", "seed", "step", "name", "value"], list(m.columns)
    got = sorted(
        (int(x.run_id), None if pd.isna(x.seed) else int(x.seed), int(x.step), x.name, None if pd.isna(x.value) else float(x.value))
        for x in m.itertuples()
    )
    assert len(got) == len(metrics), (fmt, len(got), len(metrics))
    for g, e in zip(got, metrics):
        assert g[:4] == e[:4] and same_float(e[4], g[4]), (fmt, g, e)
    if fmt == "parquet":
        assert str(m["seed"].dtype) in ("UInt64", "uint64", "float64"), m.dtypes
        assert str(m["value"].dtype) == "float64" and str(m["step"].dtype) == "int64", m.dtypes

    t = read("tables", fmt)
    assert list(t.columns) == ["run_id", "table", "row", "column", "value", "number"], list(t.columns)
    got = sorted(((int(x.run_id), x.table, int(x.row), x.column, json.loads(x.value)) for x in t.itertuples()), key=lambda c: (c[0], c[1], c[2], c[3]))
    assert len(got) == len(cells), (fmt, len(got), len(cells))
    for g, e in zip(got, cells):
        assert g[:4] == e[:4], (fmt, g, e)
        assert g[4] == e[4] or (isinstance(e[4], float) and same_float(e[4], g[4])), (fmt, g, e)
    print(f"{fmt}: {len(r)} runs, {len(m)} metric samples, {len(t)} table cells — same as the store")
print("export round trip through pandas: ok")
