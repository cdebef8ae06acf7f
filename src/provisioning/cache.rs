//! The render cache: rendered configs kept in memory, keyed by device, template, the device's
//! and tenant's generations and what else a render depends on (model, firmware, provisioning
//! URL). A changed device or tenant gets a new generation, so a stale config is never served.
//!
//! Knows nothing of how configs are rendered.

use std::hash::Hash;

use bytes::Bytes;

use crate::domain::Mac;
use crate::vendors::Template;

/// Which rendering a cached config is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The device.
    pub mac: Mac,
    /// The template.
    pub template: Template,
    /// The device's generation.
    pub device_generation: u64,
    /// Its tenant's generation.
    pub tenant_generation: u64,
    /// Hash of what else the render depends on.
    pub variant: u64,
}

#[derive(Clone)]
struct ByteWeight;

impl quick_cache::Weighter<Key, Bytes> for ByteWeight {
    fn weight(&self, _key: &Key, value: &Bytes) -> u64 {
        value.len() as u64 + 96
    }
}

/// Rendered configs, bounded by bytes.
pub struct RenderCache {
    cache: quick_cache::sync::Cache<Key, Bytes, ByteWeight>,
    variant_hasher: ahash::RandomState,
}

impl RenderCache {
    /// A cache of at most `capacity` bytes (about 2 KB a config).
    pub fn new(capacity: u64) -> Self {
        let capacity = capacity.max(1);
        Self {
            cache: quick_cache::sync::Cache::with_weighter(
                usize::try_from(capacity / 2048)
                    .unwrap_or(usize::MAX)
                    .max(16),
                capacity,
                ByteWeight,
            ),
            variant_hasher: ahash::RandomState::new(),
        }
    }

    /// The variant hash of everything else a render depends on.
    pub fn variant(&self, parts: impl Hash) -> u64 {
        self.variant_hasher.hash_one(parts)
    }

    /// A cached config.
    pub fn get(&self, key: &Key) -> Option<Bytes> {
        self.cache.get(key)
    }

    /// Keeps a config.
    pub fn insert(&self, key: Key, body: Bytes) {
        self.cache.insert(key, body);
    }
}
