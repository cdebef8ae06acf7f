//! The registry: the in-memory index of tenants and devices that the phone's hot path reads.
//!
//! A read cache of the store, loaded at start and updated after each commit (and by the
//! change feed, for changes made elsewhere). Lookups are synchronous, lock-light (dashmap
//! shards) and return `Arc`s; no guard is ever held past a lookup, never across an `.await`.
//! An entry replaced with anything a config is rendered from changed gets a fresh generation,
//! so rendered configs cached under an old generation are never served again. Knows nothing
//! of HTTP or rendering.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::domain::{
    ClaimSecret, DeviceSettings, Mac, PhoneCredentials, TenantName, TenantSettings, Vendor,
};
use crate::store::{Change, DeviceRecord, Store, TenantId, TenantRecord};

pub mod sync;

type Map<K, V> = DashMap<K, V, ahash::RandomState>;

/// A tenant as phones see it.
#[derive(Debug)]
pub struct Tenant {
    /// Row id.
    pub id: TenantId,
    /// DNS label.
    pub name: TenantName,
    /// What its phones receive.
    pub settings: TenantSettings,
    /// Changes whenever this entry is replaced.
    pub generation: u64,
}

/// A claimed device as phones see it.
#[derive(Debug)]
pub struct Device {
    /// Its MAC.
    pub mac: Mac,
    /// Registered vendor.
    pub vendor: Vendor,
    /// Claiming tenant.
    pub tenant: TenantId,
    /// Gigaset: HA1s of its MAC-ID.
    pub claim_secret: Option<Box<ClaimSecret>>,
    /// Provisioning credentials (HA1s) handed out at enrolment.
    pub credentials: Option<Box<PhoneCredentials>>,
    /// End of the enrolment window (store milliseconds).
    pub enrol_until: Option<i64>,
    /// Per-device settings; `None` when empty, so a million plain devices stay small.
    pub settings: Option<Box<DeviceSettings>>,
    /// Changes whenever what the device's config is rendered from (vendor, tenant, settings)
    /// changes; a change of credentials or enrolment window alone keeps it.
    pub generation: u64,
}

/// The in-memory index.
pub struct Registry {
    devices: Map<Mac, Arc<Device>>,
    tenants: Map<TenantId, Arc<Tenant>>,
    generation: AtomicU64,
    /// Highest change sequence applied (the change feed resumes after it).
    applied_seq: AtomicI64,
    /// Orders writers (API commits and the change feed) so the last committed state is the
    /// one left in the registry. Readers never take it.
    writers: tokio::sync::Mutex<()>,
    /// Counts the server-wide secrets the change feed saw change; the registry keeps none of
    /// them, it only tells their watchers (the ACME certificate's installer) to read again.
    secrets: tokio::sync::watch::Sender<u64>,
}

/// Rows committed to the store, to reflect in the registry in one step.
#[derive(Default, Debug)]
pub struct Committed {
    /// Tenants created or changed.
    pub tenants: Vec<TenantRecord>,
    /// Devices claimed, moved or changed.
    pub devices: Vec<DeviceRecord>,
    /// Devices released.
    pub released: Vec<Mac>,
    /// Tenants deleted.
    pub deleted_tenants: Vec<TenantName>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            devices: Map::default(),
            tenants: Map::default(),
            generation: AtomicU64::new(1),
            applied_seq: AtomicI64::new(0),
            writers: tokio::sync::Mutex::new(()),
            secrets: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes whenever the change feed reports a changed server-wide secret (stored here or
    /// by another node).
    pub fn secret_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.secrets.subscribe()
    }

    /// Held by whoever writes after a commit: between reading the store and writing here, no
    /// other writer may interleave, or an older row could overwrite a newer one.
    async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writers.lock().await
    }

    /// The one way to change a registry phones are reading: applies rows a writer committed
    /// (the partner API, the credential writer), in order with every other writer.
    pub async fn apply(&self, committed: Committed) {
        let _order = self.write_lock().await;
        for tenant in committed.tenants {
            self.put_tenant(tenant);
        }
        for device in committed.devices {
            self.put_device(device);
        }
        for mac in committed.released {
            self.remove_device(mac);
        }
        for name in committed.deleted_tenants {
            if let Some(id) = self.tenant_id(&name) {
                self.remove_tenant(id);
            }
        }
    }

    /// The id of a tenant by name (a scan: used on deletes only).
    pub fn tenant_id(&self, name: &TenantName) -> Option<TenantId> {
        self.tenants
            .iter()
            .find(|e| e.value().name == *name)
            .map(|e| *e.key())
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// The device and its tenant, if `mac` is claimed. The hot path's one read.
    pub fn lookup(&self, mac: Mac) -> Option<(Arc<Device>, Arc<Tenant>)> {
        let device = self.devices.get(&mac).map(|e| e.value().clone())?;
        let tenant = self
            .tenants
            .get(&device.tenant)
            .map(|e| e.value().clone())?;
        Some((device, tenant))
    }

    /// A tenant by id.
    pub fn tenant(&self, id: TenantId) -> Option<Arc<Tenant>> {
        self.tenants.get(&id).map(|e| e.value().clone())
    }

    /// Number of claimed devices.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Number of tenants.
    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    /// Inserts or replaces a tenant, in a registry being loaded (a shared one changes through
    /// [`Registry::apply`]).
    pub fn put_tenant(&self, record: TenantRecord) {
        let tenant = Tenant {
            id: record.id,
            name: record.name,
            settings: record.settings,
            generation: self.next_generation(),
        };
        self.tenants.insert(tenant.id, Arc::new(tenant));
    }

    /// Forgets a tenant.
    fn remove_tenant(&self, id: TenantId) {
        self.tenants.remove(&id);
    }

    /// Inserts or replaces a device, in a registry being loaded (a shared one changes through
    /// [`Registry::apply`]).
    pub fn put_device(&self, record: DeviceRecord) {
        // Cloned, not moved: the record was decoded among the store's temporaries (on another
        // thread's heap), where its pieces would pin memory the temporaries leave free; a
        // clone is allocated compactly and exactly sized (a decoded vector of one line account
        // keeps room for four). Over a million devices this is a few hundred MiB.
        let settings = (record.settings != DeviceSettings::default())
            .then(|| Box::new(record.settings.clone()));
        // Binding credentials (one store write per phone, on its first authenticated fetch)
        // leaves its config as it was: keeping the generation keeps the cached render, where
        // a fresh one would make every freshly enrolled phone render again on its next boot
        // and leave its old render in the cache until evicted.
        let kept = self
            .devices
            .get(&record.mac)
            .filter(|old| {
                old.vendor == record.vendor
                    && old.tenant == record.tenant
                    && old.settings == settings
            })
            .map(|old| old.generation);
        let generation = kept.unwrap_or_else(|| self.next_generation());
        let device = Device {
            mac: record.mac,
            vendor: record.vendor,
            tenant: record.tenant,
            claim_secret: record.claim_secret.as_ref().map(|s| Box::new(s.clone())),
            credentials: record.credentials.as_ref().map(|c| Box::new(c.clone())),
            enrol_until: record.enrol_until,
            settings,
            generation,
        };
        self.devices.insert(device.mac, Arc::new(device));
    }

    /// Forgets a device (released).
    fn remove_device(&self, mac: Mac) {
        self.devices.remove(&mac);
    }

    /// The highest change sequence reflected here.
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    fn advance_seq(&self, seq: i64) {
        self.applied_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// Loads everything from the store: tenants, then devices in keyset pages (bounded memory
    /// for a million devices). Records the change sequence read *before* loading, so changes
    /// committed during the load are replayed by the change feed, never missed.
    pub async fn hydrate(&self, store: &dyn Store) -> Result<(), crate::store::Error> {
        const PAGE: usize = 20_000;
        let seq = store.latest_change().await?;
        for tenant in store.tenants().await? {
            self.put_tenant(tenant);
        }
        let mut after = None;
        loop {
            let page = store.devices_page(after, PAGE).await?;
            let last = page.last().map(|d| d.mac);
            let full = page.len() == PAGE;
            for device in page {
                self.put_device(device);
            }
            match last {
                Some(mac) if full => after = Some(mac),
                _ => break,
            }
        }
        self.advance_seq(seq);
        Ok(())
    }

    /// Re-reads one changed entity from the store and applies it.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        change: &Change,
    ) -> Result<(), crate::store::Error> {
        match *change {
            Change::Secret(_) => self.secrets.send_modify(|n| *n = n.wrapping_add(1)),
            Change::Tenant(id) => match store.tenant(id).await? {
                Some(t) => self.put_tenant(t),
                None => self.remove_tenant(id),
            },
            Change::Device(mac) => match store.device(mac).await? {
                Some(d) => self.put_device(d),
                None => self.remove_device(mac),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Ha1, Host};

    fn tenant(id: i64, name: &str) -> TenantRecord {
        TenantRecord {
            id,
            name: TenantName::parse(name).unwrap(),
            partner: None,
            customer: None,
            settings: TenantSettings {
                sip_server: Some(Host::parse("pbx.example").unwrap()),
                ..TenantSettings::default()
            },
        }
    }

    fn device(mac: &str, tenant: i64) -> DeviceRecord {
        DeviceRecord {
            mac: Mac::parse(mac).unwrap(),
            vendor: Vendor::Yealink,
            tenant,
            claim_secret: None,
            credentials: None,
            enrol_until: None,
            settings: DeviceSettings::default(),
        }
    }

    #[test]
    fn lookups_and_generations() {
        let r = Registry::new();
        r.put_tenant(tenant(1, "sales"));
        r.put_device(device("805ec017de13", 1));
        let mac = Mac::parse("805ec017de13").unwrap();
        let (d, t) = r.lookup(mac).unwrap();
        assert_eq!(t.name.as_str(), "sales");
        assert!(d.settings.is_none());
        r.put_tenant(tenant(1, "sales"));
        let (_, t2) = r.lookup(mac).unwrap();
        assert_ne!(
            t.generation, t2.generation,
            "a replaced tenant has a new generation"
        );
        r.remove_device(mac);
        assert!(r.lookup(mac).is_none());
    }

    #[test]
    fn only_what_a_config_is_rendered_from_gives_a_device_a_new_generation() {
        let r = Registry::new();
        r.put_tenant(tenant(1, "sales"));
        r.put_tenant(tenant(2, "support"));
        let mac = Mac::parse("805ec017de13").unwrap();
        let generation = |r: &Registry| r.lookup(mac).map(|(d, _)| d.generation);
        r.put_device(device("805ec017de13", 1));
        let first = generation(&r);

        let mut bound = device("805ec017de13", 1);
        bound.credentials = Some(PhoneCredentials::issued(Ha1::new("phone", "secret")));
        bound.enrol_until = Some(1);
        r.put_device(bound);
        assert_eq!(
            generation(&r),
            first,
            "credentials and window alone keep the render"
        );

        let mut configured = device("805ec017de13", 1);
        configured.settings.display_name = Some("Reception".into());
        r.put_device(configured);
        let after_settings = generation(&r);
        assert_ne!(after_settings, first, "new settings, new render");

        let mut moved = device("805ec017de13", 2);
        moved.settings.display_name = Some("Reception".into());
        r.put_device(moved);
        assert_ne!(generation(&r), after_settings, "another tenant, new render");
    }

    #[test]
    fn a_device_of_an_unknown_tenant_is_not_served() {
        let r = Registry::new();
        r.put_device(device("805ec017de13", 7));
        assert!(r.lookup(Mac::parse("805ec017de13").unwrap()).is_none());
    }
}
