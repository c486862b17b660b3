//! One file per experiment, and the registry of names to runners.
