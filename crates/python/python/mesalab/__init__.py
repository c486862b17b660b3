"""mesalab from Python: its environments as Gymnasium envs, its runs as pandas DataFrames.

>>> import gymnasium as gym, mesalab
>>> env = gym.make("mesalab/cheese-maze-v1", split="deploy", size=15)
>>> venv = mesalab.make_vec("cheese-maze-v1", num_envs=64)      # stepped in Rust
>>> runs = mesalab.open_store("runs/mesalab.sqlite").runs()        # a DataFrame

Importing the package registers ``mesalab/<env>`` for every env with Gymnasium.
"""

from __future__ import annotations

from typing import Any

from . import _native
from .envs import MesalabEnv, MesalabVectorEnv, env_names, register_envs, splits
from .store import Store, StoreError, open_store

__all__ = [
    "MesalabEnv",
    "MesalabVectorEnv",
    "Store",
    "StoreError",
    "defaults",
    "env_names",
    "make",
    "make_vec",
    "open_store",
    "register_envs",
    "splits",
]


def make(env_name: str, split: str | None = None, **kwargs: Any) -> MesalabEnv:
    """A single env, as ``gymnasium.make("mesalab/<env_name>", ...)`` gives (without its wrappers)."""
    return MesalabEnv(env_name, split=split, **kwargs)


def make_vec(env_name: str, num_envs: int = 1, split: str | None = None, **kwargs: Any) -> MesalabVectorEnv:
    """The native vector env, as ``gymnasium.make_vec("mesalab/<env_name>", num_envs)`` gives."""
    return MesalabVectorEnv(env_name, num_envs=num_envs, split=split, **kwargs)


def defaults(env_name: str, split: str | None = None) -> str:
    """The preset parameters of a split as TOML (every keyword ``make`` accepts)."""
    return _native.defaults_toml(env_name, splits(env_name)[0] if split is None else split)


register_envs()
