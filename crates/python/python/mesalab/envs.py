"""Gymnasium envs over mesalab's Rust environments: one class for a single env, one native vector env.

Both run on ``mesalab._native.NativeEnv`` (Rust), which steps N envs and writes observations
straight into NumPy arrays it owns.

Seeding reproduces mesalab's own level sequence: an env with ``env_index=i`` reset with ``seed=S``
draws every level and every random event from the Rust stream ``Streams(S).indexed("env", i)``,
exactly like slot ``i`` of ``mesalab_envs::VecEnv`` in a run with seed ``S`` (and like
``mesalab render ENV --seed S`` for ``i = 0``); a reset without a seed continues that stream. The
vector env's ``reset(seed=S)`` gives slot ``i`` the stream ``(S, i)``, so it equals N single envs
with ``env_index=0..N-1`` all reset with ``seed=S`` (not ``S + i`` as SyncVectorEnv seeds them).
"""

from __future__ import annotations

import operator
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _native

NAMESPACE = "mesalab"
RENDER_MODES = ["ansi", "rgb_array"]
_METADATA = {"render_modes": RENDER_MODES, "render_fps": 8}


def env_names() -> list[str]:
    """Names of every registered mesalab env (``cheese-maze-v1``, ...)."""
    return list(_native.env_names())


def splits(env_name: str) -> list[str]:
    """The splits (level distributions) of an env; the first is the default."""
    return list(_native.env_entry(env_name)[1])


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return value
    raise ValueError(
        f"parameter `{key}`: a {type(value).__name__} cannot be an env parameter; pass a bool, int, float, str or a list of them"
    )


def overrides(params: dict[str, Any]) -> list[str]:
    """Keyword parameters as the CLI's ``--set key=value`` overrides (strings as written)."""
    out = []
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            items = [f'"{v}"' if isinstance(v, str) else _scalar(key, v) for v in value]
            out.append(f"{key}=[{', '.join(items)}]")
        else:
            out.append(f"{key}={_scalar(key, value)}")
    return out


def _observation_space(core: Any) -> spaces.Box:
    low, high = core.obs_bounds
    return spaces.Box(low=low, high=high, shape=tuple(core.obs_shape), dtype=np.float32)


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"unknown render_mode `{render_mode}`; valid modes: {', '.join(RENDER_MODES)} (or None)")


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an int in 0..2**64, got {seed!r}")
    return int(seed)


def _split(env_name: str, split: str | None) -> str:
    return _native.env_entry(env_name)[1][0] if split is None else split


class MesalabEnv(gym.Env):
    """One mesalab env as a Gymnasium env (no autoreset: call ``reset()`` after an episode ends).

    ``step`` returns ``terminated`` (the MDP ended: cheese eaten, agent died, ...) and ``truncated``
    (the split's time limit) separately. ``info`` carries ``performance`` (the step's increment of
    the intended objective, never part of the reward) and ``events`` (``{name: bool}`` for every
    proxy / outcome event of the env); the step that ends an episode adds ``episode_stats``
    (``return``, ``performance`` = the episode's intended-objective score, ``length`` and per-event
    ``events`` counts).
    """

    metadata = _METADATA

    def __init__(
        self,
        env_name: str,
        split: str | None = None,
        render_mode: str | None = None,
        env_index: int = 0,
        render_scale: float = 1.0,
        **params: Any,
    ):
        _check_render_mode(render_mode)
        if isinstance(env_index, bool) or not isinstance(env_index, (int, np.integer)) or env_index < 0:
            raise ValueError(f"env_index must be a non-negative int, got {env_index!r}")
        self._core = _native.NativeEnv(env_name, _split(env_name, split), overrides(params), [int(env_index)], "disabled")
        self.env_name = env_name
        self.split = self._core.split
        self.env_index = int(env_index)
        self.render_mode = render_mode
        self.render_scale = float(render_scale)
        self.event_names: tuple[str, ...] = tuple(self._core.event_names)
        self.action_names: tuple[str, ...] = tuple(self._core.actions)
        self.max_steps: int = self._core.max_steps
        self.observation_space = _observation_space(self._core)
        self.action_space = spaces.Discrete(len(self.action_names))
        self._action = np.zeros(1, dtype=np.int64)
        self._seeded = False

    @property
    def params_toml(self) -> str:
        """The resolved parameters (split preset plus overrides), as the CLI records them."""
        return self._core.params_toml

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            _check_seed(seed)
        super().reset(seed=seed)
        if seed is not None:
            seeds = [int(seed)]
        elif not self._seeded:
            # Gymnasium's unseeded first reset: a seed from the env's (entropy-seeded) np_random.
            seeds = [int(self.np_random.integers(0, 2**63))]
        else:
            seeds = None
        self._core.reset(seeds)
        self._seeded = True
        return self._core.obs[0].copy(), {}

    def step(self, action: Any):
        try:
            self._action[0] = operator.index(action)
        except TypeError:
            raise ValueError(f"action must be an int in 0..{self.action_space.n}, got {action!r}") from None
        core = self._core
        core.step(self._action)
        terminated, truncated = bool(core.terminated[0]), bool(core.truncated[0])
        bits = int(core.events[0])
        info: dict[str, Any] = {
            "performance": float(core.performance[0]),
            "events": {name: bool(bits >> k & 1) for k, name in enumerate(self.event_names)},
        }
        if terminated or truncated:
            counts = core.episode_events[0]
            info["episode_stats"] = {
                "return": float(core.episode_return[0]),
                "performance": float(core.episode_performance[0]),
                "length": int(core.episode_length[0]),
                "events": {name: int(counts[k]) for k, name in enumerate(self.event_names)},
            }
        return core.obs[0].copy(), float(core.rewards[0]), terminated, truncated, info

    def render(self):
        if self.render_mode == "ansi":
            return self._core.render_ascii(0)
        if self.render_mode == "rgb_array":
            return self._core.render_rgb(0, self.render_scale)
        return None

    def render_svg(self) -> str:
        """The current state as the SVG mesalab's reports draw."""
        return self._core.render_svg(0)


_MODES = {AutoresetMode.NEXT_STEP: "next_step", AutoresetMode.SAME_STEP: "same_step", AutoresetMode.DISABLED: "disabled"}


class MesalabVectorEnv(VectorEnv):
    """N copies of one mesalab env stepped together in Rust (a ``gymnasium.vector.VectorEnv``).

    Observations are written by Rust straight into one preallocated ``[N, C, H, W]`` float32 array,
    which ``reset`` and ``step`` return itself (``copy=False``, the default): it is overwritten by
    the next call, so copy it to keep it (or pass ``copy=True``). Rewards, terminations,
    truncations and infos are fresh arrays.

    Autoreset follows Gymnasium >= 1.0 (``metadata["autoreset_mode"]``): ``NEXT_STEP`` (default) —
    the step after an episode ends resets that env, ignores its action and returns reward 0,
    terminated = truncated = False and no step info for it; ``SAME_STEP`` — the ending step resets
    at once, with ``info["final_obs"]`` / ``info["final_info"]`` for the ended envs; ``DISABLED`` —
    reset ended envs yourself with ``reset(options={"reset_mask": mask})``. Infos have the layout
    SyncVectorEnv builds from the single env's infos (arrays plus ``_key`` masks), so this env gives
    the same results as ``SyncVectorEnv`` over ``MesalabEnv(env_index=i)`` seeded alike.
    """

    metadata = {**_METADATA, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        env_name: str,
        num_envs: int = 1,
        split: str | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        copy: bool = False,
        render_scale: float = 1.0,
        **params: Any,
    ):
        _check_render_mode(render_mode)
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            valid = ", ".join(m.value for m in AutoresetMode)
            raise ValueError(f"unknown autoreset_mode {autoreset_mode!r}; valid modes: {valid}") from None
        self._core = _native.NativeEnv(env_name, _split(env_name, split), overrides(params), list(range(num_envs)), _MODES[mode])
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.env_name = env_name
        self.split = self._core.split
        self.num_envs = int(num_envs)
        self.copy = bool(copy)
        self.render_mode = render_mode
        self.render_scale = float(render_scale)
        self.event_names: tuple[str, ...] = tuple(self._core.event_names)
        self.action_names: tuple[str, ...] = tuple(self._core.actions)
        self._event_keys = [(name, f"_{name}") for name in self.event_names]
        self._event_shifts = np.arange(len(self.event_names), dtype=np.uint32)[:, None]
        self.single_observation_space = _observation_space(self._core)
        self.single_action_space = spaces.Discrete(len(self.action_names))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._seeded = False

    @property
    def params_toml(self) -> str:
        return self._core.params_toml

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        n = self.num_envs
        if seed is None:
            seeds = None if self._seeded else [int(np.random.SeedSequence().generate_state(1, np.uint64)[0])] * n
        elif isinstance(seed, (list, tuple)):
            if len(seed) != n:
                raise ValueError(f"got {len(seed)} seeds for {n} envs; pass one seed per env or a single int")
            seeds = [None if s is None else _check_seed(s) for s in seed]
        else:
            seeds = [_check_seed(seed)] * n
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) else None)
        mask = None
        if options is not None and "reset_mask" in options:
            m = options["reset_mask"]
            if not isinstance(m, np.ndarray) or m.dtype != np.bool_ or m.shape != (n,):
                raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({n},), got {m!r}")
            if not m.any():
                raise ValueError("options['reset_mask'] must have at least one True entry")
            mask = [bool(x) for x in m]
        self._core.reset(seeds, mask)
        self._seeded = True
        return self._obs(), {}

    def step(self, actions: Any):
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or a.dtype.kind not in "iu":
            raise ValueError(f"actions must be {self.num_envs} ints (shape ({self.num_envs},)), got {actions!r}")
        core = self._core
        core.step(a.astype(np.int64, copy=False))
        terminated, truncated = core.terminated.copy(), core.truncated.copy()
        return self._obs(), core.rewards.astype(np.float64), terminated, truncated, self._infos(terminated | truncated)

    def _obs(self) -> np.ndarray:
        return self._core.obs.copy() if self.copy else self._core.obs

    def _step_info(self, mask: np.ndarray, ended: np.ndarray) -> dict[str, Any]:
        """The infos of the envs in ``mask`` (a step of theirs), batched as SyncVectorEnv batches them
        (values of the other envs are zero; one fresh mask array serves every ``_key``)."""
        if not mask.any():
            return {}
        core, everyone = self._core, mask.all()
        performance = core.performance.astype(np.float64)
        # Row k: event k of every env (contiguous rows).
        events = ((core.events[None, :] >> self._event_shifts) & 1).astype(np.bool_)
        if not everyone:
            performance[~mask] = 0.0
            events &= mask
        info: dict[str, Any] = {"performance": performance, "_performance": mask, "_events": mask}
        info["events"] = ev = {}
        for k, (name, masked) in enumerate(self._event_keys):
            ev[name], ev[masked] = events[k], mask
        done = ended & mask
        if done.any():
            counts = core.episode_events.T.astype(np.int64)  # row k: event k's counts
            counts[:, ~done] = 0
            ep_events = {}
            for k, (name, masked) in enumerate(self._event_keys):
                ep_events[name], ep_events[masked] = counts[k], done
            zero = ~done
            ret, perf = core.episode_return.copy(), core.episode_performance.copy()
            length = core.episode_length.astype(np.int64)
            ret[zero], perf[zero], length[zero] = 0.0, 0.0, 0
            info["episode_stats"] = {
                "return": ret, "_return": done, "performance": perf, "_performance": done,
                "length": length, "_length": done, "events": ep_events, "_events": done,
            }
            info["_episode_stats"] = done
        return info

    def _infos(self, ended: np.ndarray) -> dict[str, Any]:
        core = self._core
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            infos: dict[str, Any] = {}
            if ended.any():
                final_obs = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(ended):
                    final_obs[i] = core.final_obs[i].copy()
                infos["final_obs"], infos["_final_obs"] = final_obs, ended.copy()
                infos["final_info"], infos["_final_info"] = self._step_info(ended, ended), ended.copy()
            # The other envs' step infos (ended envs carry their reset's, which is empty).
            infos.update(self._step_info(~ended, ended))
            return infos
        return self._step_info(core.stepped.copy(), ended)

    def render(self):
        if self.render_mode == "ansi":
            return tuple(self._core.render_ascii(i) for i in range(self.num_envs))
        if self.render_mode == "rgb_array":
            return tuple(self._core.render_rgb(i, self.render_scale) for i in range(self.num_envs))
        return None

    def close_extras(self, **kwargs: Any) -> None:
        pass


def register_envs() -> None:
    """Registers ``mesalab/<env>`` for every mesalab env with Gymnasium (idempotent)."""
    for name in env_names():
        env_id = f"{NAMESPACE}/{name}"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="mesalab.envs:MesalabEnv",
            vector_entry_point="mesalab.envs:MesalabVectorEnv",
            kwargs={"env_name": name},
            # The env truncates at its split's own time limit; no TimeLimit wrapper on top.
            max_episode_steps=None,
            disable_env_checker=False,
        )
