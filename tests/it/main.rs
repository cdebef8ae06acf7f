//! zerotouch's black-box tests: the real server on 127.0.0.1:0, real HTTPS, real clients.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod acme;
mod backups;
mod chromium;
mod cli;
mod cluster;
mod conformance;
mod connections;
mod durability;
mod enrolment;
mod legacy_tls;
mod monitoring;
mod operations;
mod package;
mod partner_api;
mod phones;
mod portal;
mod postgres_tls;
mod redirect;
mod redirect_adapters;
mod security;
mod standins;
mod store_files;
mod support;
#[path = "../../src/store/test_database.rs"]
mod test_database;
mod tls;
mod vendors;
