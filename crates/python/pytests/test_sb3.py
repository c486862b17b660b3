"""Stable-Baselines3 PPO learns on a mesalab env through the Gymnasium API, beyond a random policy.

Set MESALAB_SKIP_SB3=1 to skip (a machine without torch); CI installs it and runs this.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from mesalab import MesalabEnv

if os.environ.get("MESALAB_SKIP_SB3") == "1":
    pytest.skip("MESALAB_SKIP_SB3=1", allow_module_level=True)

import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

# Cheese always in the top-right corner of a 5x5 maze (a new maze every episode), seen through the
# agent-centred window (a fixed-view MLP did not learn the Kruskal mazes in this budget); reward 10 for
# the cheese, 30 steps to find it. A uniform-random policy finds it in ~3% of the levels.
ENV = dict(env_name="cheese-maze-v1", split="train", size=5, min_size=5, max_steps=30, view="egocentric", view_radius=4)
EVAL_LEVELS = range(10_000, 10_200)  # seeds never used in training


def play(act, seeds) -> np.ndarray:
    """Returns of one episode per level seed, all levels stepped in lockstep (one batched act call)."""
    envs = [MesalabEnv(**ENV) for _ in seeds]
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds)])
    returns, live = np.zeros(len(envs)), np.ones(len(envs), dtype=bool)
    while live.any():
        actions = act(obs)
        for i in np.flatnonzero(live):
            obs[i], r, terminated, truncated, _ = envs[i].step(int(actions[i]))
            returns[i] += r
            live[i] = not (terminated or truncated)
    return returns


def test_ppo_beats_a_random_policy_on_the_same_levels():
    torch.set_num_threads(1)
    train = make_vec_env(MesalabEnv, n_envs=8, seed=0, env_kwargs=ENV)
    model = PPO(
        "MlpPolicy", train, n_steps=64, batch_size=256, n_epochs=4, learning_rate=1e-3, ent_coef=0.01,
        gamma=0.95, seed=0, device="cpu", policy_kwargs=dict(net_arch=[64, 64]), verbose=0,
    )
    model.learn(total_timesteps=20_000)
    seeds = list(EVAL_LEVELS)
    trained = play(lambda o: model.predict(o, deterministic=True)[0], seeds)
    rng = np.random.default_rng(0)
    random = play(lambda o: rng.integers(4, size=len(o)), seeds)
    se = np.sqrt(trained.var() / len(trained) + random.var() / len(random))
    print(f"PPO mean return {trained.mean():.2f}, random {random.mean():.2f} (standard error {se:.2f})")
    assert trained.mean() > random.mean() + 3 * se
    assert (trained > 0).mean() >= 2 * (random > 0).mean() + 0.05
