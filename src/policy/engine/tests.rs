//! Unit tests of the decision engine and its counters: no network, time passed in.
