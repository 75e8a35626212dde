//! import_bad_input tests
