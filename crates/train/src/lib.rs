//! Base optimizers: supervised Adam, PPO.
