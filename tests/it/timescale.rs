//! timescale tests
