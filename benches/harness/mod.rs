//! What the benchmarks with their own `main` share: the command line (`cli.rs`), processes and
//! the admin listener (`process.rs`), throwaway PostgreSQL databases (`database.rs`, over the
//! store's test-database helper) and store contents generated straight into a database
//! (`generated.rs`).
//!
//! Included by `boot_storm`, `cluster`, `device_list` and `hydrate` with `#[path]`: each bench
//! is its own crate, and this is bench scaffolding, not part of the library. Must not know what
//! a bench measures.

// Each bench uses a different part of it.
#![allow(dead_code)]

/// The command line: flags, backends, exit codes.
pub mod cli;
/// Throwaway PostgreSQL databases.
pub mod database;
/// Store contents generated straight into a database.
pub mod generated;
/// Processes, the admin listener, `/proc`.
pub mod process;
/// The store's test-database helper, shared with the library's and the integration tests.
#[path = "../../src/store/test_database.rs"]
pub mod test_database;
