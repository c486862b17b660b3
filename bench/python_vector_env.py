"""Steps/s of mesalab's native vector env vs gymnasium.vector.SyncVectorEnv over the same mesalab
single env and over MiniGrid, in one run, single core, random actions; prints medians and ratios.
Run by bench/python_vector_env.sh (which builds the wheel and the venv)."""

import argparse
import os
import statistics
import time
from functools import partial

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
import numpy as np
from gymnasium.vector import SyncVectorEnv
from minigrid.wrappers import ImgObsWrapper

import mesalab

p = argparse.ArgumentParser()
p.add_argument("--num-envs", type=int, default=64)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--native-steps", type=int, default=4_000, help="vector steps per native measurement")
p.add_argument("--sync-steps", type=int, default=150, help="vector steps per SyncVectorEnv measurement")
a = p.parse_args()
n = a.num_envs
assert os.sched_getaffinity(0).__len__() == 1 or os.environ.get("MESALAB_BENCH_ANY_CORES"), "run pinned to one core (taskset -c 0)"

# Closest to MiniGrid-FourRooms-v0: a 19x19 maze seen through a 7x7 egocentric window.
MAZE = dict(size=19, min_size=19, view="egocentric", view_radius=3)


def steps_per_sec(venv, vector_steps: int, n_actions: int) -> float:
    venv.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, n_actions, size=(vector_steps, n))
    t0 = time.perf_counter()
    for act in actions:
        venv.step(act)
    return vector_steps * n / (time.perf_counter() - t0)


MAKERS = {
    "native": (lambda: mesalab.make_vec("cheese-maze-v1", num_envs=n, **MAZE), a.native_steps, 4),
    "sync_mesalab": (
        lambda: SyncVectorEnv([partial(mesalab.make, "cheese-maze-v1", env_index=i, **MAZE) for i in range(n)]),
        a.sync_steps, 4,
    ),
    # Navigation actions only (left, right, forward), like cheese-maze's 4 moves.
    "sync_minigrid": (
        lambda: SyncVectorEnv([lambda: ImgObsWrapper(gym.make("MiniGrid-FourRooms-v0")) for _ in range(n)]),
        a.sync_steps, 3,
    ),
}
venvs = {k: make() for k, (make, _, _) in MAKERS.items()}
for k, (_, steps, n_actions) in MAKERS.items():
    steps_per_sec(venvs[k], max(steps // 10, 5), n_actions)  # warm-up
# Round robin, so that a change in the machine's load hits every contestant alike.
samples = {k: [] for k in MAKERS}
for _ in range(a.repeats):
    for k, (_, steps, n_actions) in MAKERS.items():
        samples[k].append(steps_per_sec(venvs[k], steps, n_actions))
results = {k: statistics.median(v) for k, v in samples.items()}
print(f"num_envs={n}, one core, median of {a.repeats} (env steps/s, random actions, autoreset)")
print(f"  native MesalabVectorEnv (cheese-maze-v1 19x19, 7x7 view): {results['native']:>12,.0f}")
print(f"  SyncVectorEnv of MesalabEnv (same env):                   {results['sync_mesalab']:>12,.0f}")
print(f"  SyncVectorEnv of MiniGrid-FourRooms-v0 (ImgObsWrapper):   {results['sync_minigrid']:>12,.0f}")
print(f"ratio native / SyncVectorEnv(mesalab):  {results['native'] / results['sync_mesalab']:.1f}x")
print(f"ratio native / SyncVectorEnv(MiniGrid): {results['native'] / results['sync_minigrid']:.1f}x")
