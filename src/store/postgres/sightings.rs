//! Last-seen status in PostgreSQL: a batch of sightings written in one transaction, as
//! columns, for devices that are still claimed; failed authentications to their own table. Must not know how sightings are collected or
//! batched.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::PostgresStore;
use crate::domain::Mac;
use crate::store::{Error, Sighting};

/// [`Store::record_sightings`](crate::store::Store::record_sightings).
pub(super) async fn record(store: &PostgresStore, batch: Vec<Sighting>) -> Result<(), Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let (failures, served): (Vec<Sighting>, Vec<Sighting>) = batch
        .into_iter()
        .partition(Sighting::is_failed_authentication);
    let cols = Arc::new(sighting_columns(&served));
    let failed = Arc::new(sighting_columns(&failures));
    store.write("record_sightings", move |tx| {
        let (cols, failed) = (Arc::clone(&cols), Arc::clone(&failed));
        Box::pin(async move {
            if !failed.mac.is_empty() {
                tx.conn()
                    .execute(
                        "INSERT INTO device_auth_failures (mac, at, source_ip, user_agent) \
                         SELECT u.* FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) \
                             AS u(mac, at, source_ip, user_agent) \
                         WHERE EXISTS (SELECT 1 FROM devices d WHERE d.mac = u.mac) \
                         ON CONFLICT (mac) DO UPDATE SET at = excluded.at, \
                         source_ip = excluded.source_ip, user_agent = excluded.user_agent",
                        &[&failed.mac, &failed.at, &failed.source, &failed.user_agent],
                    )
                    .await?;
            }
            if cols.mac.is_empty() {
                return Ok(());
            }
            tx.conn()
                .execute(
                    "INSERT INTO device_status (mac, last_seen, source_ip, user_agent, model, firmware, last_file, last_outcome) \
                     SELECT u.* FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
                         AS u(mac, last_seen, source_ip, user_agent, model, firmware, last_file, last_outcome) \
                     WHERE EXISTS (SELECT 1 FROM devices d WHERE d.mac = u.mac) \
                     ON CONFLICT (mac) DO UPDATE SET last_seen = excluded.last_seen, source_ip = excluded.source_ip, \
                     user_agent = excluded.user_agent, model = excluded.model, firmware = excluded.firmware, \
                     last_file = excluded.last_file, last_outcome = excluded.last_outcome",
                    &[
                        &cols.mac,
                        &cols.at,
                        &cols.source,
                        &cols.user_agent,
                        &cols.model,
                        &cols.firmware,
                        &cols.file,
                        &cols.outcome,
                    ],
                )
                .await?;
            Ok(())
        })
    })
    .await
}

/// Sightings as columns: the last one per MAC (as if written one after the other), in MAC
/// order so that concurrent batches lock rows in the same order.
fn sighting_columns(batch: &[Sighting]) -> SightingColumns {
    let mut latest: BTreeMap<Mac, &Sighting> = BTreeMap::new();
    for s in batch {
        latest.insert(s.mac, s);
    }
    let mut cols = SightingColumns::default();
    for (mac, s) in latest {
        cols.mac.push(mac.to_string());
        cols.at.push(s.at);
        cols.source.push(s.source.to_string());
        cols.user_agent.push(s.user_agent.clone());
        cols.model.push(s.model.clone());
        cols.firmware.push(s.firmware.clone());
        cols.file.push(s.file);
        cols.outcome.push(s.outcome);
    }
    cols
}

#[derive(Default)]
struct SightingColumns {
    mac: Vec<String>,
    at: Vec<i64>,
    source: Vec<String>,
    user_agent: Vec<String>,
    model: Vec<Option<String>>,
    firmware: Vec<Option<String>>,
    file: Vec<&'static str>,
    outcome: Vec<&'static str>,
}
