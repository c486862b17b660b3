//! Models (LSA / softmax transformer, MLP, CNN, GRU) with named hook points, on burn.
