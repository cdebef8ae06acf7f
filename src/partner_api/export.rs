//! The device list as CSV, for a partner's spreadsheet or inventory: every device matching the
//! list's filters with its status, streamed page by page so a partner with 100,000 devices
//! costs the server one page of memory, not the whole list.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Authenticated;
use super::devices::{device_query, Filters};
use super::error::{ApiError, ErrorBody};
use super::wire::DeviceOut;
use super::ApiState;
use crate::store::DeviceQuery;

/// Devices read from the store per step of the stream.
const PAGE: usize = 1000;

/// The columns, in order.
pub const COLUMNS: [&str; 15] = [
    "mac",
    "vendor",
    "tenant",
    "display_name",
    "lines",
    "claimed_at",
    "phone_auth",
    "enrolled_at",
    "last_seen",
    "last_outcome",
    "last_file",
    "model",
    "firmware",
    "source",
    "user_agent",
];

/// Which devices to export: the device list's filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// MAC prefix, any notation (`80:5E:C0`, `805ec0`).
    #[param(pattern = r"^[:.\-]*([0-9A-Fa-f][:.\-]*){0,12}$")]
    mac_prefix: Option<String>,
    /// Hex digits found anywhere in the MAC, any notation (`17:de`, `17de`).
    #[param(pattern = r"^[:.\-]*([0-9A-Fa-f][:.\-]*){0,12}$")]
    mac_contains: Option<String>,
    /// Only this tenant's devices.
    #[param(value_type = Option<super::wire::TenantNameText>)]
    tenant: Option<String>,
    /// Only this vendor's devices.
    #[param(value_type = Option<super::wire::VendorName>)]
    vendor: Option<String>,
    /// Last fetch at or after this RFC 3339 time (any offset).
    #[param(value_type = Option<String>, format = DateTime)]
    seen_since: Option<String>,
    /// Last fetch before this RFC 3339 time (any offset).
    #[param(value_type = Option<String>, format = DateTime)]
    seen_before: Option<String>,
    /// Only devices that never fetched their config.
    never_seen: Option<bool>,
}

/// A text a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, carriage return
/// first) is written with a leading `'`: display names and User-Agents come from outside.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// One device's row.
fn row(d: &DeviceOut) -> [String; 15] {
    let status = d.status.as_ref();
    let text = |v: Option<&str>| cell(v.unwrap_or("")).into_owned();
    [
        d.mac.clone(),
        d.vendor.clone(),
        d.tenant.clone(),
        text(d.display_name.as_deref()),
        d.lines.len().to_string(),
        d.claimed_at.clone(),
        d.phone_auth.state.clone(),
        text(d.phone_auth.enrolment.as_ref().map(|e| e.at.as_str())),
        text(status.map(|s| s.last_seen.as_str())),
        text(status.map(|s| s.last_outcome.as_str())),
        text(status.map(|s| s.last_file.as_str())),
        text(status.and_then(|s| s.model.as_deref())),
        text(status.and_then(|s| s.firmware.as_deref())),
        text(status.map(|s| s.source.as_str())),
        text(status.map(|s| s.user_agent.as_str())),
    ]
}

/// CSV text of `records` (one header line first when `header`).
fn csv_chunk(header: bool, devices: &[DeviceOut]) -> Result<Bytes, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(devices.len() * 160 + 200));
    if header {
        out.write_record(COLUMNS)?;
    }
    for d in devices {
        out.write_record(row(d))?;
    }
    out.into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// Where the stream stands.
struct Cursor {
    state: ApiState,
    partner: crate::domain::PartnerId,
    query: Option<DeviceQuery>,
}

/// Export the partner's devices matching the list's filters, with their status, as CSV in MAC
/// order (`text/csv`, a header line first). Streamed: a failure of the store after the first
/// rows ends the transfer abruptly rather than with a short file that looks complete.
#[utoipa::path(get, path = "/api/v1/devices/export", tag = "devices",
    params(ExportParams),
    responses(
        (status = 200, description = "The devices, one CSV row each: mac, vendor, tenant, display_name, lines (how many), claimed_at, phone_auth, enrolled_at, last_seen, last_outcome, last_file, model, firmware, source, user_agent", content_type = "text/csv", body = String),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn export_devices(
    State(state): State<ApiState>,
    caller: Authenticated,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let partner = caller.partner()?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let query = device_query(
        Filters {
            mac_prefix: p.mac_prefix,
            mac_contains: p.mac_contains,
            tenant: p.tenant,
            vendor: p.vendor,
            seen_since: p.seen_since,
            seen_before: p.seen_before,
            never_seen: p.never_seen,
        },
        None,
        PAGE,
    )?;
    // The first page is read before answering, so an unreachable store is a 503, not a 200
    // with a broken body.
    let first = state
        .store
        .search_devices(Some(partner), query.clone())
        .await?;
    let rest = next_query(&query, &first);
    let devices: Vec<DeviceOut> = first.into_iter().map(Into::into).collect();
    let head = csv_chunk(true, &devices).map_err(|e| {
        tracing::error!(error = %e, "cannot write the device export");
        ApiError::Internal
    })?;
    let cursor = Cursor {
        state,
        partner,
        query: rest,
    };
    let tail = futures_util::stream::unfold(cursor, |mut c| async move {
        let query = c.query.take()?;
        let page = match c
            .state
            .store
            .search_devices(Some(c.partner), query.clone())
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "device export cut short: the store failed");
                return Some((Err(std::io::Error::other("the store failed")), c));
            }
        };
        c.query = next_query(&query, &page);
        let devices: Vec<DeviceOut> = page.into_iter().map(Into::into).collect();
        let chunk = csv_chunk(false, &devices).map_err(std::io::Error::other);
        Some((chunk, c))
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) }),
        tail,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"devices.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The query of the page after `page`, if `page` was full.
fn next_query(query: &DeviceQuery, page: &[crate::store::DeviceView]) -> Option<DeviceQuery> {
    if page.len() < query.limit {
        return None;
    }
    let last = page.last()?;
    Some(DeviceQuery {
        after: Some(last.record.mac),
        ..query.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn what_a_spreadsheet_would_run_is_written_as_text() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+1 555"), "'+1 555");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("Front desk"), "Front desk");
        assert_eq!(cell(""), "");
    }
}
