"""Steps/s of PufferLib 2.0.2 Ocean `squared` and `grid`, N envs vectorised in C in one process,
one thread, random actions drawn before timing. Prints `key=value` lines (median of --reps).
Run by bench/pufferlib_side_by_side.sh.

Two workarounds for the 2.0.2 wheel, both checked at run time:
- `import pufferlib.ocean` fails: its __init__ imports `ocean/squared/squared.py`, which the wheel
  does not ship. A bare package object stands in for `pufferlib.ocean` so the compiled modules
  import, and `Squared` below is upstream's squared.py wrapper re-typed.
- The compiled modules export a global C function `step`, and glibc still exports its legacy
  regexp `step()`; with Python's default dlopen flags the module's call binds to glibc's, so
  `c_envs.step()` silently does nothing (and looks very fast). Loading with RTLD_DEEPBIND binds it
  to the module's own; `verify_*` fail loudly if the envs still do not move.

`grid`: the Ocean `grid.py` wrapper needs the `raylib` Python package and `pufferlib.ocean.render`,
and its `make_puffergrid` is `assert False` ("unfinished"), so the compiled `CGrid` (the locked-room
preset: 19x19 room in a 25x25 array, 7x7 egocentric uint8 view, 5 actions, 512-step horizon) is
driven with the buffers and step body of `PufferGrid.step`.
"""

import argparse
import os
import sys
import time
import types

import gymnasium
import numpy as np
import pufferlib

ocean = types.ModuleType("pufferlib.ocean")
ocean.__path__ = [os.path.join(os.path.dirname(pufferlib.__file__), "ocean")]
sys.modules["pufferlib.ocean"] = ocean
_flags = sys.getdlopenflags()
sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
from pufferlib.ocean.squared.cy_squared import CySquared  # noqa: E402
from pufferlib.ocean.grid.cy_grid import CGrid  # noqa: E402

sys.setdlopenflags(_flags)

ACTION_BATCHES = 64


class Squared(pufferlib.PufferEnv):
    """Upstream pufferlib/ocean/squared/squared.py (2.0 branch), missing from the 2.0.2 wheel."""

    def __init__(self, num_envs=1, size=11):
        self.single_observation_space = gymnasium.spaces.Box(low=0, high=1, shape=(size * size,), dtype=np.uint8)
        self.single_action_space = gymnasium.spaces.Discrete(5)
        self.render_mode = None
        self.num_agents = num_envs
        super().__init__(None)
        self.c_envs = CySquared(self.observations, self.actions, self.rewards, self.terminals, num_envs, size)

    def reset(self, seed=None):
        self.c_envs.reset()
        return self.observations, []

    def step(self, actions):
        self.actions[:] = actions
        self.c_envs.step()
        episode_returns = self.rewards[self.terminals]
        info = []
        if len(episode_returns) > 0:
            info = [{"reward": np.mean(episode_returns)}]
        return self.observations, self.rewards, self.terminals, self.truncations, info


class Grid:
    """`CGrid` with `PufferGrid`'s buffers (rows sized to the 49 bytes CGrid writes) and step body."""

    def __init__(self, num_envs):
        self.observations = np.zeros((num_envs, 49), dtype=np.uint8)
        self.actions = np.zeros(num_envs, dtype=np.uint32)
        self.rewards = np.zeros(num_envs, dtype=np.float32)
        self.terminals = np.zeros(num_envs, dtype=bool)
        self.truncations = np.zeros(num_envs, dtype=bool)
        self.dones = np.zeros(num_envs, dtype=np.float32)
        self.c_envs = CGrid(self.observations, self.actions, self.rewards, self.dones, num_envs)
        self.sum_rewards = 0.0

    def reset(self, seed=None):
        self.c_envs.reset()
        return self.observations, {}

    def step(self, actions):
        self.actions[:] = actions
        self.rewards.fill(0)
        self.c_envs.step()
        self.sum_rewards += self.rewards.sum()
        return self.observations, self.rewards, self.terminals, self.truncations, {}


def verify_squared(env, actions):
    before = env.observations.copy()
    ends = 0
    for k in range(200):
        env.step(actions[k % ACTION_BATCHES])
        ends += int(env.terminals.sum())
    if ends == 0 or np.array_equal(before, env.observations):
        sys.exit("squared: no episode ended / observations unchanged: C step is not running")
    return ends / 200


def verify_grid(env, actions):
    before = env.observations.copy()
    for k in range(600):  # past the 512-step horizon, so every env has finished an episode
        env.step(actions[k % ACTION_BATCHES])
    if np.isnan(env.c_envs.get_returns()) or np.array_equal(before, env.observations):
        sys.exit("grid: no episode finished / observations unchanged: C step is not running")
    return None


def measure(env, actions, mode, obs_read, steps, reps):
    staging = np.empty_like(env.observations)
    act, c_step = env.actions, env.c_envs.step

    # mode=wrapper: the env object's step(); mode=c: only the action copy and the C loop.
    def run(n, k0):
        for k in range(k0, k0 + n):
            a = actions[k % ACTION_BATCHES]
            if mode == "wrapper":
                env.step(a)
            else:
                act[:] = a
                c_step()
            if obs_read == "copy":
                np.copyto(staging, env.observations)

    run(steps // 5 + 1, 0)
    walls = []
    for r in range(reps):
        t0 = time.perf_counter()
        run(steps, r * steps)
        walls.append(time.perf_counter() - t0)
    return walls


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--steps", type=int, default=2000, help="batched steps per repetition")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--envs", default="squared,grid")
    args = p.parse_args()
    n = args.num_envs
    rng = np.random.default_rng(1)
    for name in args.envs.split(","):
        env = Squared(num_envs=n) if name == "squared" else Grid(n)
        env.reset()
        actions = rng.integers(0, 5, size=(ACTION_BATCHES, n)).astype(env.actions.dtype)
        ends_per_step = (verify_squared if name == "squared" else verify_grid)(env, actions)
        obs_len = env.observations.shape[1]
        for mode, obs_read in (("wrapper", "copy"), ("c", "none")):
            walls = sorted(measure(env, actions, mode, obs_read, args.steps, args.reps))
            wall = walls[len(walls) // 2]
            env_steps = n * args.steps
            extra = f" episodes_per_batched_step={ends_per_step:.1f}" if ends_per_step is not None else ""
            print(
                f"side=pufferlib env={name} mode={mode} obs_read={obs_read} num_envs={n} obs_len={obs_len} "
                f"obs_dtype=uint8 obs_bytes_per_env={obs_len} steps={env_steps} wall_s={wall:.4f} "
                f"sps={env_steps / wall:.0f} sps_min={env_steps / walls[-1]:.0f} "
                f"sps_max={env_steps / walls[0]:.0f} reps={args.reps}{extra}",
                flush=True,
            )


if __name__ == "__main__":
    main()
