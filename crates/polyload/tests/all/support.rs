//! Helpers: write C bundles into temporary directories (shared with the
//! outside host crate at the repository root).

pub use polyload_outside::{c_source, cc_shared, examples, Scratch};
