//! The JSON import document: `import::json_rows`, then every row's checks (`import::prepare`)
//! as the `import` command and `POST /import` run them, without the store.
//!
//! Asserts: never panics; a document that is not an object is refused whole; otherwise one
//! result per row, and exactly the rows not refused reach the batch, valid and normalised
//! (see `check_prepared`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::OuiTable;
use zerotouch::import::{json_rows, prepare};
use zerotouch::store::Actor;
use zerotouch_fuzz::check_prepared;

fuzz_target!(|document: &[u8]| {
    let Ok((tenants, devices)) = json_rows(document) else {
        return;
    };
    assert_eq!(
        document.iter().find(|b| !b.is_ascii_whitespace()),
        Some(&b'{'),
        "only an object is a document"
    );
    let ouis = OuiTable::default();
    let (t, d) = (tenants.len(), devices.len());
    let prepared = prepare(&ouis, tenants, devices, &Actor::cli());
    check_prepared(&prepared, t, d, &ouis);
});
