//! query tests
