//! Environments with training and deployment level distributions, intended vs proxy outcomes. No tensors.
