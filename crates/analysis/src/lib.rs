//! Baselines (GD, GD++, OLS, ridge), alignment metrics, probes.
