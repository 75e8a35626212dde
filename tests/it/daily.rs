//! daily tests
