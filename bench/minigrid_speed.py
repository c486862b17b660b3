"""Single-env steps/s of a MiniGrid env with random navigation actions (observation built every
step, auto-reset), for bench/minigrid_side_by_side.sh. Prints one line: `<env> steps_per_sec=<x>`."""
import argparse
import time

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--env", default="MiniGrid-FourRooms-v0")
p.add_argument("--steps", type=int, default=100_000)
a = p.parse_args()

env = gym.make(a.env)
obs, _ = env.reset(seed=0)
# Navigation actions only (turn left, turn right, forward), like the 4 moves of cheese-maze.
actions = np.random.default_rng(0).integers(0, 3, size=a.steps)
episodes = 0
t0 = time.perf_counter()
for act in actions:
    obs, reward, terminated, truncated, _ = env.step(int(act))
    if terminated or truncated:
        obs, _ = env.reset()
        episodes += 1
dt = time.perf_counter() - t0
print(f"{a.env} steps_per_sec={a.steps / dt:.0f} steps={a.steps} episodes={episodes} obs_image={obs['image'].shape}")
