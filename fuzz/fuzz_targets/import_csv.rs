//! The CSV device import: `import::csv_rows`, then every row's checks (`import::prepare`),
//! without the store.
//!
//! Asserts: never panics; a header naming an unknown column, or missing `mac` or `tenant`, is
//! refused whole; each row becomes an object holding only known columns (the `line_*` ones
//! folded into one line account); and the checks hold as for JSON (see `check_prepared`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use zerotouch::domain::OuiTable;
use zerotouch::import::{csv_rows, prepare, CSV_COLUMNS};
use zerotouch::store::Actor;
use zerotouch_fuzz::check_prepared;

fuzz_target!(|document: &[u8]| {
    let Ok(rows) = csv_rows(document) else {
        return;
    };
    for row in &rows {
        let Value::Object(map) = row else {
            panic!("a CSV row became {row}");
        };
        for (key, value) in map {
            if key == "lines" {
                let Value::Array(lines) = value else {
                    panic!("lines: {value}");
                };
                assert_eq!(lines.len(), 1);
                let Value::Object(line) = &lines[0] else {
                    panic!("line: {value}");
                };
                for field in line.keys() {
                    assert!(CSV_COLUMNS.contains(&format!("line_{field}").as_str()));
                }
            } else {
                assert!(CSV_COLUMNS.contains(&key.as_str()), "column {key}");
                assert!(!key.starts_with("line_"));
            }
            if let Value::String(s) = value {
                assert!(!s.is_empty(), "an empty cell is an absent value");
            }
        }
    }
    let ouis = OuiTable::default();
    let n = rows.len();
    let prepared = prepare(&ouis, Vec::new(), rows, &Actor::cli());
    check_prepared(&prepared, 0, n, &ouis);
});
