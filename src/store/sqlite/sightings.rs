//! Last-seen status in SQLite: a batch of sightings written in one transaction, for devices
//! that are still claimed; failed authentications to their own table. Must not know how sightings are collected or batched.

use rusqlite::params;

use super::connection::Db;
use super::SqliteStore;
use crate::store::{Error, Sighting};

/// [`Store::record_sightings`](crate::store::Store::record_sightings).
pub(super) async fn record(store: &SqliteStore, batch: Vec<Sighting>) -> Result<(), Error> {
    if batch.is_empty() {
        return Ok(());
    }
    store
        .write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO device_status (mac, last_seen, source_ip, user_agent, model, firmware, last_file, last_outcome) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM devices WHERE mac = ?1) \
                     ON CONFLICT(mac) DO UPDATE SET last_seen = excluded.last_seen, source_ip = excluded.source_ip, \
                     user_agent = excluded.user_agent, model = excluded.model, firmware = excluded.firmware, \
                     last_file = excluded.last_file, last_outcome = excluded.last_outcome",
                )
                .db()?;
            let mut failure = tx
                .prepare_cached(
                    "INSERT INTO device_auth_failures (mac, at, source_ip, user_agent) \
                     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM devices WHERE mac = ?1) \
                     ON CONFLICT(mac) DO UPDATE SET at = excluded.at, source_ip = excluded.source_ip, \
                     user_agent = excluded.user_agent",
                )
                .db()?;
            for s in &batch {
                if s.is_failed_authentication() {
                    failure
                        .execute(params![
                            s.mac.to_string(),
                            s.at,
                            s.source.to_string(),
                            s.user_agent
                        ])
                        .db()?;
                    continue;
                }
                stmt.execute(params![
                    s.mac.to_string(),
                    s.at,
                    s.source.to_string(),
                    s.user_agent,
                    s.model,
                    s.firmware,
                    s.file,
                    s.outcome
                ])
                .db()?;
            }
            Ok(())
        })
        .await
}
