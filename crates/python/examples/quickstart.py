"""The README's example (with the store path as an argument): make an env, play a random episode,
read runs into pandas.

    python crates/python/examples/quickstart.py [STORE]     # STORE defaults to runs/mesalab.sqlite
"""

import sys

import gymnasium as gym
import mesalab

env = gym.make("mesalab/cheese-maze-v1", split="deploy", size=9)
obs, info = env.reset(seed=0)
done, total = False, 0.0
while not done:
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    total, done = total + reward, terminated or truncated
print(total, info["episode_stats"]["performance"])  # return, intended-objective score
store = mesalab.open_store(sys.argv[1] if len(sys.argv) > 1 else "runs/mesalab.sqlite")  # read-only
print(store.runs(), store.metrics(), store.verdicts())  # pandas DataFrames
