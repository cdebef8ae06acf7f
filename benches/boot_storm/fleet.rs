//! The fleet: which devices exist (vendor, MAC, tenant, label code), how each phone asks for
//! its files (User-Agent, boot sequence), and the import document that puts the fleet into a
//! data directory through `zerotouch import`, reused when it is already there.
//!
//! Deterministic: the same options always give the same fleet. Written independently of the
//! server's own vendor tables on purpose, so that the storm checks the server against what
//! phones send rather than against itself. Must not know HTTP or TLS.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::options::Sequence;

/// Where a kept data directory holds the credentials the enrolment pass handed out.
pub(crate) const CREDENTIALS_FILE: &str = "credentials.tsv";

/// The three vendors phones come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Vendor {
    Yealink,
    Snom,
    Gigaset,
}

impl Vendor {
    /// The MAC prefix its devices get.
    pub(crate) fn oui(self) -> [u8; 3] {
        match self {
            Vendor::Yealink => [0x80, 0x5e, 0xc0],
            Vendor::Snom => [0x00, 0x04, 0x13],
            Vendor::Gigaset => [0x7c, 0x2f, 0x80],
        }
    }

    /// Its name, as `phones.tsv` and the import spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Snom => "snom",
            Vendor::Gigaset => "gigaset",
        }
    }

    /// Its place in per-vendor counters.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A deterministic, well-mixed 64-bit hash (splitmix64's finaliser), so that vendor and tenant
/// do not line up with the stride phones are picked at.
pub(crate) fn mix(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which devices exist: `devices` of them over `tenants` tenants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fleet {
    pub(crate) devices: usize,
    pub(crate) tenants: usize,
    /// Raw JSON members added to each tenant row (`--tenant-extra`).
    pub(crate) tenant_extra: Option<String>,
}

/// One generated device.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Device {
    pub(crate) vendor: Vendor,
    pub(crate) mac: [u8; 6],
    pub(crate) tenant: usize,
    pub(crate) hash: u64,
}

impl Fleet {
    /// The device at `index`.
    pub(crate) fn device(&self, index: usize) -> Device {
        let hash = mix(index as u64);
        let vendor = match hash % 10 {
            0..=4 => Vendor::Yealink,
            5..=7 => Vendor::Snom,
            _ => Vendor::Gigaset,
        };
        let tenant = ((hash >> 32) % self.tenants as u64) as usize;
        let [a, b, c] = vendor.oui();
        let i = index as u32;
        Device {
            vendor,
            mac: [a, b, c, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            tenant,
            hash,
        }
    }

    /// The device phone `phone` of `phones` is: spread evenly over the whole store, so a small
    /// storm against a large store looks devices up all over the index.
    pub(crate) fn phone(&self, phone: usize, phones: usize) -> Device {
        self.device(self.phone_index(phone, phones))
    }

    /// The index of the device phone `phone` of `phones` is.
    pub(crate) fn phone_index(&self, phone: usize, phones: usize) -> usize {
        (phone as u64 * self.devices as u64 / phones as u64) as usize
    }

    /// What a data directory holding this fleet records (`boot_storm.fleet`), to reuse it.
    pub(crate) fn marker(&self) -> String {
        format!(
            "boot_storm fleet v1 devices={} tenants={} tenant_extra={}\n",
            self.devices,
            self.tenants,
            self.tenant_extra.as_deref().unwrap_or("")
        )
    }
}

impl Device {
    /// `80:5E:C0:…`.
    pub(crate) fn mac_colon_upper(&self) -> String {
        let m = self.mac;
        format!(
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }

    /// `80:5e:c0:…`.
    pub(crate) fn mac_colon_lower(&self) -> String {
        self.mac_colon_upper().to_ascii_lowercase()
    }

    /// `805EC0…`.
    pub(crate) fn mac_hex_upper(&self) -> String {
        self.mac.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// `805ec0…`.
    pub(crate) fn mac_hex_lower(&self) -> String {
        self.mac_hex_upper().to_ascii_lowercase()
    }

    /// The 4-character label code of a Gigaset device.
    pub(crate) fn claim_code(&self) -> String {
        const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        (0..4)
            .map(|k| DIGITS[((self.hash >> (8 + 6 * k)) % 36) as usize] as char)
            .collect()
    }

    /// The User-Agent the vendor's phone sends (fixtures/requests.json).
    pub(crate) fn user_agent(&self) -> String {
        match self.vendor {
            Vendor::Yealink => format!("Yealink SIP-T46S 66.86.0.15 {}", self.mac_colon_lower()),
            Vendor::Snom => format!(
                "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 {} SXM:0 UXM:0)",
                self.mac_hex_upper()
            ),
            Vendor::Gigaset => format!(
                "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;{}",
                self.mac_hex_upper()
            ),
        }
    }

    /// The files the phone asks for on boot, in order, with the status each must get.
    pub(crate) fn boot_sequence(&self) -> Vec<Step> {
        let step = |path: String, status: u16, what: &'static str| Step { path, status, what };
        match self.vendor {
            Vendor::Yealink => vec![
                step(
                    format!("/{}.boot", self.mac_hex_lower()),
                    404,
                    "yealink <mac>.boot",
                ),
                step(
                    "/y000000000000.boot".into(),
                    404,
                    "yealink y000000000000.boot",
                ),
                step(
                    "/y000000000066.cfg".into(),
                    200,
                    "yealink common y000000000066.cfg",
                ),
                step(
                    format!("/{}.cfg", self.mac_hex_lower()),
                    200,
                    "yealink <mac>.cfg",
                ),
            ],
            Vendor::Snom => vec![
                step("/snomD785.htm".into(), 200, "snom model snomD785.htm"),
                step(
                    format!("/snomD785-{}.htm", self.mac_hex_upper()),
                    200,
                    "snom snomD785-<MAC>.htm",
                ),
            ],
            Vendor::Gigaset => vec![
                step("/provisioning.xml".into(), 404, "gigaset provisioning.xml"),
                step(
                    format!("/{}.xml", self.mac_hex_upper()),
                    200,
                    "gigaset <MAC>.xml",
                ),
            ],
        }
    }

    /// The files the phone asks for in a storm: its boot sequence, or only its per-device file.
    pub(crate) fn requests(&self, sequence: Sequence) -> Vec<Step> {
        let mut steps = self.boot_sequence();
        if sequence == Sequence::Device {
            steps.drain(..steps.len() - 1);
        }
        steps
    }
}

/// One request of a boot sequence.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) what: &'static str,
}

/// Writes the import document for `fleet` (streamed: a million devices is ~100 MB).
pub(crate) fn write_import(fleet: &Fleet, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(b"{\"tenants\": [\n")?;
    for t in 0..fleet.tenants {
        let sep = if t + 1 == fleet.tenants { "" } else { "," };
        let extra = fleet
            .tenant_extra
            .as_deref()
            .map_or_else(String::new, |e| format!(", {e}"));
        writeln!(
            w,
            "{{\"name\": \"t{t}\", \"sip_server\": \"t{t}.cloud.example\"{extra}}}{sep}"
        )?;
    }
    w.write_all(b"],\n\"devices\": [\n")?;
    for i in 0..fleet.devices {
        let d = fleet.device(i);
        let sep = if i + 1 == fleet.devices { "" } else { "," };
        let (mac, tenant) = (d.mac_colon_upper(), d.tenant);
        match d.vendor {
            Vendor::Yealink => writeln!(
                w,
                "{{\"mac\": \"{mac}\", \"tenant\": \"t{tenant}\", \"lines\": [{{\"user\": \"{}\", \"password\": \"pw-{:012x}\", \"display_name\": \"Desk {i}\"}}]}}{sep}",
                100_000 + i,
                d.hash >> 16
            )?,
            Vendor::Snom => writeln!(w, "{{\"mac\": \"{mac}\", \"tenant\": \"t{tenant}\"}}{sep}")?,
            Vendor::Gigaset => writeln!(
                w,
                "{{\"mac\": \"{mac}\", \"tenant\": \"t{tenant}\", \"claim_code\": \"{}\"}}{sep}",
                d.claim_code()
            )?,
        }
    }
    w.write_all(b"]}\n")?;
    w.flush()?;
    Ok(())
}

/// Writes `phones.tsv`: what other tools (compare-nginx.sh, curl) need to act as these phones.
pub(crate) fn write_phone_list(fleet: &Fleet, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::new(file);
    writeln!(w, "index\tvendor\tmac\ttenant\tuser_agent\tdevice_path")?;
    for i in 0..fleet.devices {
        let d = fleet.device(i);
        let device_path = d.requests(Sequence::Device).remove(0).path;
        writeln!(
            w,
            "{i}\t{}\t{}\tt{}\t{}\t{device_path}",
            d.vendor.name(),
            d.mac_hex_upper(),
            d.tenant,
            d.user_agent()
        )?;
    }
    w.flush()?;
    Ok(())
}

/// Makes sure `dir` holds `fleet`: generates and imports it unless a previous run already did.
/// True if it was already there (reused).
pub(crate) fn prepare(fleet: &Fleet, dir: &Path) -> anyhow::Result<bool> {
    let marker = dir.join("boot_storm.fleet");
    match std::fs::read_to_string(&marker) {
        Ok(m) if m == fleet.marker() => {
            println!(
                "data dir {} already holds this fleet: reusing it",
                dir.display()
            );
            return Ok(true);
        }
        Ok(m) => bail!(
            "{} holds another fleet ({}); use another --data-dir",
            dir.display(),
            m.trim()
        ),
        Err(_) if dir.join("zerotouch.db").exists() => bail!(
            "{} already holds a zerotouch store that boot_storm did not create",
            dir.display()
        ),
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    // Credentials of an earlier store would be wrong for this one.
    let _ = std::fs::remove_file(dir.join(CREDENTIALS_FILE));
    let document = dir.join("import.json");
    let started = Instant::now();
    write_import(fleet, &document)?;
    println!(
        "generated {} devices over {} tenants in {:.1} s",
        fleet.devices,
        fleet.tenants,
        started.elapsed().as_secs_f64()
    );
    let report = dir.join("import-report.json");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .arg("import")
        .arg(&document)
        .args(["--output", "json"])
        .arg("--data-dir")
        .arg(dir)
        .args(["--log-level", "warn"])
        .stdout(std::fs::File::create(&report)?)
        .status()
        .context("cannot run zerotouch import")?;
    if !status.success() {
        bail!(
            "zerotouch import failed ({status}); see {} (per-row results)",
            report.display()
        );
    }
    println!(
        "imported in {:.1} s (zerotouch import)",
        started.elapsed().as_secs_f64()
    );
    // The document and the per-row report can be large; the store holds everything now.
    let _ = std::fs::remove_file(&document);
    let _ = std::fs::remove_file(&report);
    std::fs::write(&marker, fleet.marker())?;
    Ok(false)
}
