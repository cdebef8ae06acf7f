//! What the import targets assert about rows checked before the store: shared by
//! `import_json` and `import_csv`.

use std::collections::HashSet;

use zerotouch::domain::{Mac, OuiTable, TenantName};
use zerotouch::import::{Prepared, RowResult};

/// Asserts that `prepared` gives one result per row, in order; that a refused row says why
/// with a code; and that exactly the rows not refused reach the batch, valid, under their
/// normalised key (a unique tenant name; an assignable MAC of a supported vendor).
pub fn check_prepared(
    prepared: &Prepared,
    tenant_rows: usize,
    device_rows: usize,
    ouis: &OuiTable,
) {
    check_results(&prepared.tenants, tenant_rows);
    check_results(&prepared.devices, device_rows);

    let pending = |results: &[RowResult]| -> Vec<usize> {
        results
            .iter()
            .filter(|r| r.status.is_empty())
            .map(|r| r.row)
            .collect()
    };
    let batch = &prepared.batch;
    let tenant_batch: Vec<usize> = batch.tenants.iter().map(|(row, _, _)| *row).collect();
    assert_eq!(tenant_batch, pending(&prepared.tenants));
    let mut names = HashSet::new();
    for (row, name, settings) in &batch.tenants {
        assert_eq!(prepared.tenants[*row].key, name.to_string());
        assert!(TenantName::parse(name.as_str()).ok().as_ref() == Some(name));
        assert!(
            names.insert(name.clone()),
            "tenant {name} twice in one batch"
        );
        assert!(zerotouch::vendors::validate_tenant(settings).is_ok());
    }

    let device_batch: Vec<usize> = batch.devices.iter().map(|d| d.row).collect();
    assert_eq!(device_batch, pending(&prepared.devices));
    for d in &batch.devices {
        let key = &prepared.devices[d.row].key;
        assert_eq!(key, &d.mac.to_string());
        assert_eq!(Mac::parse(key), Ok(d.mac));
        assert!(d.mac.check_assignable().is_ok(), "{key}");
        assert_eq!(ouis.vendor_of(d.mac), Some(d.vendor), "{key}");
        assert!(TenantName::parse(d.tenant.as_str()).is_ok());
        assert!(zerotouch::vendors::validate_device(d.vendor, &d.settings).is_ok());
        assert!(d.enrol_until.is_some());
    }
}

fn check_results(results: &[RowResult], rows: usize) {
    assert_eq!(results.len(), rows);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.row, i);
        match r.status {
            "refused" => assert!(r.code.is_some() && r.reason.is_some(), "{r:?}"),
            "" => assert!(r.code.is_none() && r.reason.is_none(), "{r:?}"),
            other => panic!("row {i} settled before the store: {other:?}"),
        }
    }
}
