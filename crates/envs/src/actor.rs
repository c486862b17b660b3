//! [`Actor`]: whatever chooses actions in an env — a trained policy (in `nn`), a scripted baseline
//! ([`crate::scripted`]) or the uniform-random policy ([`UniformRandom`]). Rollouts, evaluations and
//! the goal-misgeneralization baselines are written against this one trait, so a trained agent and
//! its baselines are played by the same loop on the same levels.

use crate::api::Env;
use mesalab_core::StreamRng;
use rand::Rng;

/// Chooses one action per state, for a batch of states at once (a neural policy runs one forward
/// pass per batch).
///
/// Invariant: the action of state `i` depends only on `states[i]`, the actor and the draws it takes
/// from `rng` in index order, so the same inputs and stream give the same actions.
pub trait Actor<E: Env> {
    /// A short name for tables and legends (`random`, `oracle: BFS to the coin`, `trained`).
    fn name(&self) -> String;

    /// Writes the action for `states[i]` into `actions[i]` (`actions.len() == states.len()`).
    fn act(&self, env: &E, states: &[&E::State], rng: &mut StreamRng, actions: &mut [usize]);
}

/// Every action with the same probability, whatever the state.
#[derive(Clone, Copy, Debug, Default)]
pub struct UniformRandom;

impl<E: Env> Actor<E> for UniformRandom {
    fn name(&self) -> String {
        "uniform random".into()
    }

    fn act(&self, env: &E, states: &[&E::State], rng: &mut StreamRng, actions: &mut [usize]) {
        let k = env.spec().actions.len();
        for a in actions.iter_mut().take(states.len()) {
            *a = rng.random_range(0..k);
        }
    }
}

/// An actor that decides from one state at a time (scripted baselines), lifted to batches.
pub trait StateActor<E: Env> {
    fn name(&self) -> String;
    fn act_one(&self, env: &E, state: &E::State, rng: &mut StreamRng) -> usize;
}

/// Runs a [`StateActor`] over a batch, state by state in index order.
#[derive(Clone, Copy, Debug)]
pub struct PerState<A>(pub A);

impl<E: Env, A: StateActor<E>> Actor<E> for PerState<A> {
    fn name(&self) -> String {
        self.0.name()
    }

    fn act(&self, env: &E, states: &[&E::State], rng: &mut StreamRng, actions: &mut [usize]) {
        for (s, a) in states.iter().zip(actions.iter_mut()) {
            *a = self.0.act_one(env, s, rng);
        }
    }
}

/// A [`StateActor`] of a concrete env `E`, run on an [`AnyEnv`](crate::AnyEnv) that wraps an `E`
/// (experiments that take any registered env by name, e.g. spec-gaming, still get typed baselines).
///
/// Invariant: only built for an `AnyEnv` whose inner env is an `E` ([`OnAny::for_env`] checks).
pub struct OnAny<E, A> {
    actor: A,
    env: std::marker::PhantomData<fn() -> E>,
}

impl<E: Env + 'static, A: StateActor<E>> OnAny<E, A> {
    /// `Some` when `env` wraps an `E`.
    pub fn for_env(env: &crate::AnyEnv, actor: A) -> Option<Self> {
        env.downcast_ref::<E>().map(|_| Self { actor, env: std::marker::PhantomData })
    }
}

impl<E: Env + 'static, A: StateActor<E>> Actor<crate::AnyEnv> for OnAny<E, A>
where
    E::State: 'static,
{
    fn name(&self) -> String {
        self.actor.name()
    }

    fn act(&self, env: &crate::AnyEnv, states: &[&crate::AnyState], rng: &mut StreamRng, actions: &mut [usize]) {
        const WRONG: &str = "OnAny is only built for an AnyEnv of its own env (OnAny::for_env)";
        let inner = env.downcast_ref::<E>().expect(WRONG);
        for (s, a) in states.iter().zip(actions.iter_mut()) {
            *a = self.actor.act_one(inner, s.downcast_ref::<E::State>().expect(WRONG), rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cartpole::{CartPole, CartPoleParams};
    use mesalab_core::{Seed, Streams};

    #[test]
    fn uniform_random_covers_every_action_and_is_seeded() {
        let env = CartPole::new(CartPoleParams::default());
        let mut rng = Streams::new(Seed(3)).stream("a");
        let s = env.reset(&mut rng);
        let states = vec![&s; 400];
        let draw = |seed| {
            let mut a = vec![0; 400];
            Actor::act(&UniformRandom, &env, &states, &mut Streams::new(Seed(seed)).stream("x"), &mut a);
            a
        };
        let a = draw(1);
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
        for k in 0..env.spec().actions.len() {
            let share = a.iter().filter(|&&x| x == k).count() as f64 / a.len() as f64;
            assert!((share - 0.5).abs() < 0.1, "action {k}: {share}");
        }
    }
}
