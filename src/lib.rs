//! zerotouch: a zero-touch provisioning server for Yealink, Snom and Gigaset phones.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants they keep.

pub mod acme;
pub mod admin;
pub mod app;
pub mod build_info;
pub mod config;
pub mod domain;
pub mod fixture;
pub mod import;
pub mod metrics;
pub mod partner_api;
pub mod portal;
pub mod provisioning;
pub mod redirect;
pub mod registry;
pub mod reload;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod vendors;
