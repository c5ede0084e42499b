//! Unit tests of the pure apply step.
