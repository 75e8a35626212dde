//! import_real tests
