"""Shared fixtures: the Rust binaries the tests compare against (built by .ci/python.sh)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import mesalab

ROOT = Path(__file__).resolve().parents[3]
ENV_SPLITS = [(name, split) for name in mesalab.env_names() for split in mesalab.splits(name)]


def _binary(var: str, default: Path) -> Path:
    path = Path(os.environ.get(var, default))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it (`cargo build --release --workspace --bin mesalab --example rust_trace`) or set {var}")
    return path


@pytest.fixture(scope="session")
def mesalab_bin() -> Path:
    return _binary("MESALAB_BIN", ROOT / "target/release/mesalab")


@pytest.fixture(scope="session")
def trace_bin() -> Path:
    return _binary("MESALAB_TRACE_BIN", ROOT / "target/release/examples/rust_trace")


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
