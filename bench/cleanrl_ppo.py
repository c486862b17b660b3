"""CleanRL-style PPO on CartPole-v1, the peer for mesalab's PPO side-by-side benchmark.

Written for mesalab (not vendored) following the algorithm of CleanRL's `ppo.py` (Huang et al.,
"The 37 implementation details of PPO", 2022) step by step, with its default hyperparameters:
4 envs x 128 steps, Adam lr 2.5e-4 (eps 1e-5) annealed linearly, gamma .99, GAE lambda .95,
4 minibatches x 4 epochs, clip .2 (surrogate and value), entropy .01, value .5, global grad-norm clip
.5, advantage normalisation per minibatch, separate 64-64 tanh actor and critic with orthogonal init
(sqrt 2 hidden, .01 policy head, 1 value head).

One deliberate difference, to match mesalab: on time-limit truncation the last reward gets
`+ gamma * V(final observation)` (CleanRL treats truncation like termination). Pass
`--cleanrl-truncation` for CleanRL's behaviour.

Prints `key=value` lines in the format of `crates/train/examples/ppo_cartpole.rs`: at the first
update at or past each multiple of --every steps, the mean return of the episodes that finished in
the last 10 updates (count-weighted), then the training wall-clock time.
"""

import argparse
import random
import time
from collections import deque

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.distributions.categorical import Categorical


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--every", type=int, default=50_000)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (mesalab runs on one)")
    p.add_argument("--cleanrl-truncation", action="store_true", help="no bootstrap on truncation")
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=2.5e-4)
    p.add_argument("--anneal-lr", type=int, default=1)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--num-minibatches", type=int, default=4)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--norm-adv", type=int, default=1)
    p.add_argument("--clip-coef", type=float, default=0.2)
    p.add_argument("--clip-vloss", type=int, default=1)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--target-kl", type=float, default=None)
    a = p.parse_args()
    a.batch_size = a.num_envs * a.num_steps
    a.minibatch_size = a.batch_size // a.num_minibatches
    a.num_iterations = a.total_timesteps // a.batch_size
    return a


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim, n_actions):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, 64)), nn.Tanh(),
            layer_init(nn.Linear(64, n_actions), std=0.01),
        )

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


def make_envs(n):
    fns = [lambda: gym.make("CartPole-v1") for _ in range(n)]
    mode = getattr(getattr(gym.vector, "AutoresetMode", None), "SAME_STEP", None)
    if mode is not None:  # gymnasium >= 1.1: the final observation is in infos["final_obs"]
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode), "final_obs"
    return gym.vector.SyncVectorEnv(fns), "final_observation"  # gymnasium 0.29: same-step reset


def main():
    args = parse_args()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    envs, final_key = make_envs(args.num_envs)
    obs_dim = envs.single_observation_space.shape[0]
    agent = Agent(obs_dim, envs.single_action_space.n)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim))
    actions = torch.zeros((args.num_steps, args.num_envs))
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    dones = torch.zeros((args.num_steps, args.num_envs))
    values = torch.zeros((args.num_steps, args.num_envs))

    print(f"impl=cleanrl seed={args.seed} total_timesteps={args.total_timesteps} torch={torch.__version__} "
          f"gymnasium={gym.__version__} threads={torch.get_num_threads()}", flush=True)
    global_step = 0
    start_time = time.time()
    next_obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.Tensor(next_obs)
    next_done = torch.zeros(args.num_envs)
    ep_return = np.zeros(args.num_envs)
    ep_length = np.zeros(args.num_envs, dtype=np.int64)
    window = deque(maxlen=10)  # (count, mean return) of the last 10 updates
    next_checkpoint = args.every

    for iteration in range(1, args.num_iterations + 1):
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate
        finished = []

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            next_obs_np, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
            reward = reward.astype(np.float32)
            ep_return += reward
            ep_length += 1
            done = np.logical_or(terminations, truncations)
            if not args.cleanrl_truncation:
                trunc = np.logical_and(truncations, np.logical_not(terminations))
                if trunc.any():
                    final = np.stack([infos[final_key][i] for i in np.nonzero(trunc)[0]]).astype(np.float32)
                    with torch.no_grad():
                        v = agent.get_value(torch.Tensor(final)).flatten().numpy()
                    reward[trunc] += args.gamma * v
            for i in np.nonzero(done)[0]:
                finished.append(ep_return[i])
                ep_return[i] = 0.0
                ep_length[i] = 0
            rewards[step] = torch.tensor(reward).view(-1)
            next_obs, next_done = torch.Tensor(next_obs_np), torch.Tensor(done.astype(np.float32))

        # GAE
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
            returns = advantages + values

        b_obs = obs.reshape((-1, obs_dim))
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        b_inds = np.arange(args.batch_size)
        for epoch in range(args.update_epochs):
            np.random.shuffle(b_inds)
            for start in range(0, args.batch_size, args.minibatch_size):
                mb_inds = b_inds[start:start + args.minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb_inds], b_actions.long()[mb_inds])
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()
                newvalue = newvalue.view(-1)
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef)
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        window.append((len(finished), float(np.mean(finished)) if finished else 0.0))
        if global_step >= next_checkpoint:
            n = sum(c for c, _ in window)
            r = sum(c * m for c, m in window) / n if n else float("nan")
            sps = global_step / (time.time() - start_time)
            print(f"step={global_step} return={r:.1f} sps={sps:.0f}", flush=True)
            while next_checkpoint <= global_step:
                next_checkpoint += args.every

    wall = time.time() - start_time
    print(f"done impl=cleanrl seed={args.seed} steps={global_step} wall_s={wall:.2f} sps={global_step / wall:.0f}")
    envs.close()


if __name__ == "__main__":
    main()
