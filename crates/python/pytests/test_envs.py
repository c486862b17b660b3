"""The Gymnasium envs: API conformance, agreement with the Rust side, vector == N single envs."""

from __future__ import annotations

import warnings
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import mesalab
from mesalab import MesalabEnv, MesalabVectorEnv

from conftest import ENV_SPLITS, run


def test_every_registry_env_is_registered_with_both_splits():
    names = mesalab.env_names()
    assert len(names) >= 8 and "cheese-maze-v1" in names
    for name in names:
        assert f"mesalab/{name}" in gym.registry
        assert mesalab.splits(name) == ["train", "deploy"], name
    assert len(ENV_SPLITS) == 2 * len(names)


@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
@pytest.mark.parametrize("env_name,split", ENV_SPLITS)
def test_env_checker_passes(env_name, split, render_mode):
    env = gym.make(f"mesalab/{env_name}", split=split, render_mode=render_mode, disable_env_checker=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(env.unwrapped, skip_render_check=render_mode is None)


@pytest.mark.parametrize("env_name,split", ENV_SPLITS)
def test_first_level_is_the_cli_render_for_the_same_seed(env_name, split, mesalab_bin):
    env = gym.make(f"mesalab/{env_name}", split=split, render_mode="ansi")
    for seed in (0, 5, 2**40 + 3):
        cli = run([mesalab_bin, "render", env_name, "--split", split, "--seed", seed])
        assert cli.returncode == 0, cli.stderr
        env.reset(seed=seed)
        assert env.render() == cli.stdout, f"{env_name} {split} seed {seed}"


# --- Seeding reproduces the Rust level sequence: the trace of mesalab_envs::VecEnv ---------------

M64 = np.uint64


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + M64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> M64(30))) * M64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> M64(27))) * M64(0x94D049BB133111EB)
    return x ^ (x >> M64(31))


def obs_hash(obs: np.ndarray) -> str:
    """The hash rust_trace prints: sum_k splitmix64(bits(obs[k]) + splitmix64(k + 1)) mod 2^64."""
    bits = np.ascontiguousarray(obs, dtype=np.float32).ravel().view(np.uint32).astype(np.uint64)
    weights = _splitmix64(np.arange(1, bits.size + 1, dtype=np.uint64))
    return f"{int(_splitmix64(bits + weights).sum(dtype=np.uint64)):016x}"


def f32_bits(x: float) -> str:
    return f"{int(np.float32(x).view(np.uint32)):08x}"


def rust_trace(trace_bin, env_name, split, seed, n, steps):
    out = run([trace_bin, env_name, split, seed, n, steps])
    assert out.returncode == 0, out.stderr
    resets, rows = [], [[None] * n for _ in range(steps)]
    for line in out.stdout.splitlines():
        f = line.split()
        if f[0] == "reset":
            resets.append(f[2])
        else:
            rows[int(f[0])][int(f[1])] = f[2:]
    assert len(resets) == n and all(all(r) for r in rows)
    return resets, rows


def action(t: int, i: int, n_actions: int) -> int:
    return (7 * t + 3 * i) % n_actions


@pytest.mark.parametrize("env_name,split", ENV_SPLITS)
def test_seeding_reproduces_the_rust_vec_env(env_name, split, trace_bin):
    seed, n = 12345, 3
    max_steps = MesalabEnv(env_name, split=split).max_steps
    steps = min(max_steps + 30, 700)
    resets, rows = rust_trace(trace_bin, env_name, split, seed, n, steps)
    n_actions = MesalabEnv(env_name).action_space.n

    # The native vector env in same-step mode is mesalab's VecEnv exactly.
    venv = MesalabVectorEnv(env_name, n, split=split, autoreset_mode=AutoresetMode.SAME_STEP)
    obs, _ = venv.reset(seed=seed)
    assert [obs_hash(o) for o in obs] == resets
    ends = 0
    for t in range(steps):
        obs, rew, term, trunc, info = venv.step(np.array([action(t, i, n_actions) for i in range(n)]))
        for i in range(n):
            h, r, perf, end, events, final = rows[t][i]
            done = bool(term[i] or trunc[i])
            src = info["final_info"] if done else info
            bits = sum(int(src["events"][name][i]) << k for k, name in enumerate(venv.event_names))
            got_end = "terminated" if term[i] else "truncated" if trunc[i] else "-"
            assert (obs_hash(obs[i]), f32_bits(rew[i]), f32_bits(src["performance"][i]), got_end, str(bits)) == (
                h, r, perf, end, events,
            ), f"{env_name} {split}: step {t}, env {i}"
            if done:
                ends += 1
                assert obs_hash(info["final_obs"][i]) == final
    assert ends >= n, "every env ended an episode, so later levels were compared too"

    # Single envs with env_index = i, reset by hand when an episode ends, give slot i's levels.
    for i in range(n):
        env = MesalabEnv(env_name, split=split, env_index=i)
        obs, _ = env.reset(seed=seed)
        assert obs_hash(obs) == resets[i]
        for t in range(steps):
            obs, rew, term, trunc, info = env.step(action(t, i, n_actions))
            h, r, _, end, _, final = rows[t][i]
            if term or trunc:
                assert obs_hash(obs) == final, f"{env_name} {split}: env {i} step {t} last observation"
                obs, _ = env.reset()  # no seed: continues the stream, as VecEnv does
            assert (obs_hash(obs), f32_bits(rew)) == (h, r), f"{env_name} {split}: env {i} step {t}"


# --- Native vector env == SyncVectorEnv over single envs ---------------------------------------


def assert_same(a, b, where="info"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.dtype == object and a.shape == b.shape, where
        for x, y in zip(a, b):
            assert (x is None and y is None) or np.array_equal(x, y), where
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} vs {b.dtype}"
        assert np.array_equal(a, b), f"{where}: {a} vs {b}"


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_name,split", ENV_SPLITS)
def test_native_vector_env_equals_sync_vector_env_of_single_envs(env_name, split, mode):
    n, seed = 4, 77
    native = MesalabVectorEnv(env_name, n, split=split, autoreset_mode=mode)
    sync = SyncVectorEnv([partial(MesalabEnv, env_name, split=split, env_index=i) for i in range(n)], autoreset_mode=mode)
    assert native.single_observation_space == sync.single_observation_space
    assert native.action_space == sync.action_space
    o1, i1 = native.reset(seed=seed)
    o2, i2 = sync.reset(seed=[seed] * n)  # the same seed for each: env index i picks the stream
    assert np.array_equal(o1, o2)
    assert_same(i1, i2)
    rng = np.random.default_rng(1)
    steps = min(2 * native._core.max_steps + 5, 1100)
    episodes = 0
    for t in range(steps):
        a = rng.integers(0, native.single_action_space.n, n)
        r1, r2 = native.step(a), sync.step(a)
        for name, x, y in zip(("obs", "reward", "terminated", "truncated"), r1[:4], r2[:4]):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{env_name} {split} {mode}: step {t} {name}"
        assert_same(r1[4], r2[4], f"step {t} info")
        episodes += int((r1[2] | r1[3]).sum())
    assert episodes >= n, "autoresets were compared"


def test_vector_obs_is_written_in_place_unless_copy():
    venv = mesalab.make_vec("cheese-maze-v1", num_envs=8)
    obs0, _ = venv.reset(seed=0)
    obs1, *_ = venv.step(np.zeros(8, dtype=np.int64))
    assert obs1 is obs0, "one buffer, written by Rust each step"
    assert obs1.shape == (8, 3, 13, 13) and obs1.dtype == np.float32 and obs1.flags["C_CONTIGUOUS"]
    copying = mesalab.make_vec("cheese-maze-v1", num_envs=8, copy=True)
    c0, _ = copying.reset(seed=0)
    c1, *_ = copying.step(np.zeros(8, dtype=np.int64))
    assert c1 is not c0 and np.array_equal(c0, venv.reset(seed=0)[0])


def test_make_vec_uses_the_native_env_and_sync_mode_still_works():
    venv = gym.make_vec("mesalab/keys-chests-v1", num_envs=3, split="deploy")
    assert isinstance(venv, MesalabVectorEnv) and venv.split == "deploy"
    sync = gym.make_vec("mesalab/keys-chests-v1", num_envs=3, vectorization_mode="sync", split="deploy")
    o1, _ = venv.reset(seed=4)
    o2, _ = sync.reset(seed=[4, 4, 4])
    # gym.make_vec's sync mode builds every sub-env with env_index 0: only env 0 matches.
    assert np.array_equal(o1[0], o2[0])


def test_disabled_autoreset_needs_a_masked_reset():
    venv = MesalabVectorEnv("boat-race-v1", 2, autoreset_mode=AutoresetMode.DISABLED, max_steps=3)
    venv.reset(seed=1)
    for _ in range(3):
        _, _, term, trunc, _ = venv.step(np.array([0, 1]))
    assert list(trunc) == [True, True]
    with pytest.raises(ValueError, match="call reset"):
        venv.step(np.array([0, 1]))
    venv.reset(options={"reset_mask": np.array([True, True])})
    venv.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": [True, False]})


def test_info_carries_performance_events_and_episode_totals():
    env = gym.make("mesalab/cheese-maze-v1", split="deploy", max_steps=60)
    rng = np.random.default_rng(3)
    names = env.unwrapped.event_names
    seen_cheese = False
    for episode in range(30):
        env.reset(seed=episode)
        ret = perf = length = 0
        counts = dict.fromkeys(names, 0)
        while True:
            _, r, term, trunc, info = env.step(int(rng.integers(4)))
            ret, perf, length = ret + r, perf + info["performance"], length + 1
            for k in names:
                counts[k] += info["events"][k]
            if info["events"]["got_cheese"]:
                seen_cheese = True
                assert info["performance"] == 1.0 and term, "the cheese is the intended objective and ends the episode"
            if term or trunc:
                stats = info["episode_stats"]
                assert stats == {"return": ret, "performance": perf, "length": length, "events": counts}
                assert trunc == (length == 60 and not term)
                break
            assert "episode_stats" not in info
    assert seen_cheese


def test_bad_actions_and_seeds_are_value_errors():
    env = mesalab.make("cheese-maze-v1")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range: valid actions are 0..4"):
        env.step(4)
    with pytest.raises(ValueError, match="action must be an int"):
        env.step(1.5)
    with pytest.raises(ValueError, match="seed must be an int"):
        env.reset(seed=-1)
    venv = mesalab.make_vec("cheese-maze-v1", num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be 2 ints"):
        venv.step(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="action 7 of env 1"):
        venv.step(np.array([0, 7]))
    with pytest.raises(ValueError, match="unknown autoreset_mode"):
        mesalab.make_vec("cheese-maze-v1", autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="render_mode"):
        mesalab.make("cheese-maze-v1", render_mode="human")


BAD_PARAMS = [
    ("cheese-maze-v1", "train", {"sise": 9}, ["--set", "sise=9"]),
    ("cheese-maze-v1", "train", {"size": 4}, ["--set", "size=4"]),
    ("cheese-maze-v1", "deploy", {"size": -3}, ["--set", "size=-3"]),
    ("keys-chests-v1", "deploy", {"view": "egocentrc"}, ["--set", "view=egocentrc"]),
    ("cheese-maze-v1", "deplyo", {}, []),
    ("cheese-mze-v1", "train", {}, []),
]


@pytest.mark.parametrize("env_name,split,params,cli_args", BAD_PARAMS)
def test_bad_params_raise_value_error_with_the_cli_message(env_name, split, params, cli_args, mesalab_bin):
    cli = run([mesalab_bin, "render", env_name, "--split", split, *cli_args])
    assert cli.returncode == 2
    want = cli.stderr.strip().removeprefix("error: ")
    with pytest.raises(ValueError) as err:
        mesalab.make(env_name, split=split, **params)
    assert str(err.value) == want
    if env_name in mesalab.env_names():
        with pytest.raises(ValueError) as err:
            gym.make(f"mesalab/{env_name}", split=split, **params)
        assert str(err.value) == want
        with pytest.raises(ValueError) as err:
            mesalab.make_vec(env_name, 4, split=split, **params)
        assert str(err.value) == want


def test_params_reach_the_env():
    env = gym.make("mesalab/cheese-maze-v1", split="deploy", size=9, view="egocentric", view_radius=2)
    assert env.observation_space.shape == (3, 5, 5)
    assert "size = 9" in env.unwrapped.params_toml and 'view = "egocentric"' in env.unwrapped.params_toml
    assert "rand_region" in mesalab.defaults("cheese-maze-v1", "deploy")


def test_rgb_render_is_the_svg_picture():
    env = gym.make("mesalab/coin-corridor-v1", render_mode="rgb_array", render_scale=2.0)
    env.reset(seed=1)
    img = env.render()
    svg = env.unwrapped.render_svg()
    width = float(svg.split('width="', 1)[1].split('"', 1)[0])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[1] == round(2 * width)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) >= 4
    venv = MesalabVectorEnv("coin-corridor-v1", 2, render_mode="rgb_array")
    venv.reset(seed=1)
    frames = venv.render()
    assert len(frames) == 2 and frames[0].shape[2] == 3
