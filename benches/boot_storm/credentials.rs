//! Provisioning credentials the phones hold: found in an enrolment config (in the vendor's own
//! keys), and kept in a data directory's `credentials.tsv` across runs (mode 0600: they are the
//! phones' passwords).
//!
//! Must not know how they are used to authenticate.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context};

pub(crate) use crate::fleet::CREDENTIALS_FILE;
use crate::fleet::{Device, Fleet, Vendor};

/// Provisioning credentials a phone holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credential {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// The provisioning credentials an enrolment config hands the phone, in the vendor's own keys:
/// Yealink `static.auto_provision.server.username/password = …` lines, Snom
/// `<http_client_user perm="R">…</http_client_user>` and `http_client_pass` elements.
pub(crate) fn credentials_in(vendor: Vendor, body: &[u8]) -> Option<Credential> {
    let text = std::str::from_utf8(body).ok()?;
    let (username, password) = match vendor {
        Vendor::Yealink => {
            let setting = |key: &str| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().to_owned())
                })
            };
            (
                setting("static.auto_provision.server.username")?,
                setting("static.auto_provision.server.password")?,
            )
        }
        Vendor::Snom => {
            let element = |tag: &str| {
                let start = text.find(&format!("<{tag}"))?;
                let rest = &text[start..];
                let value = &rest[rest.find('>')? + 1..];
                Some(value[..value.find('<')?].trim().to_owned())
            };
            (element("http_client_user")?, element("http_client_pass")?)
        }
        Vendor::Gigaset => return None,
    };
    (!username.is_empty() && !password.is_empty()).then_some(Credential { username, password })
}

/// Reads `credentials.tsv` (device index, MAC, username, password), checking every row
/// against `fleet`. A missing file is an empty set.
pub(crate) fn read_credentials(
    fleet: &Fleet,
    path: &Path,
) -> anyhow::Result<HashMap<usize, Credential>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [index, mac, username, password] = fields[..] else {
            bail!(
                "{}:{}: expected 4 tab-separated fields",
                path.display(),
                n + 1
            );
        };
        let index: usize = index
            .parse()
            .with_context(|| format!("{}:{}: bad index", path.display(), n + 1))?;
        if index >= fleet.devices || fleet.device(index).mac_hex_upper() != mac {
            bail!(
                "{}:{}: device {index} {mac} is not in this fleet",
                path.display(),
                n + 1
            );
        }
        out.insert(
            index,
            Credential {
                username: username.to_owned(),
                password: password.to_owned(),
            },
        );
    }
    Ok(out)
}

/// Writes `credentials.tsv` (replacing it whole, through a temporary file; mode 0600: these
/// are the phones' provisioning passwords).
pub(crate) fn write_credentials(
    fleet: &Fleet,
    path: &Path,
    credentials: &HashMap<usize, Credential>,
) -> anyhow::Result<()> {
    let tmp = path.with_extension("tsv.tmp");
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let file = open
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    let mut w = BufWriter::new(file);
    writeln!(w, "index\tmac\tusername\tpassword")?;
    let mut indices: Vec<usize> = credentials.keys().copied().collect();
    indices.sort_unstable();
    for i in indices {
        let c = &credentials[&i];
        writeln!(
            w,
            "{i}\t{}\t{}\t{}",
            fleet.device(i).mac_hex_upper(),
            c.username,
            c.password
        )?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// What a Gigaset phone claimed with its label code authenticates with out of the box:
/// username = MAC, password = MAC-ID (`<MAC>-<code>`).
pub(crate) fn mac_id_credential(device: &Device) -> Credential {
    let mac = device.mac_hex_upper();
    Credential {
        password: format!("{mac}-{}", device.claim_code()),
        username: mac,
    }
}
