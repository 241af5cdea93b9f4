//! Certificates already in a cert dir: renewing them (`certs renew all`, and one at a time
//! for a CA rotation's switch) with their own keys, subjects, names and usages, and
//! kubeadm's `certs check-expiration` table of them.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kubeboot_pki::files::Mode;
use kubeboot_pki::{CertificateAuthority, Kubeconfig, PrivateKey};
use x509_parser::prelude::*;

use crate::generate::{GenError, Layout, Outcome, io, issue_as, read, usages_of};
use crate::plan::Identity;

/// Re-issues every certificate in the layout's cert dir from the same CA and keys (names,
/// usages and subjects kept), and updates the kubeconfigs that carry them.
pub fn renew_all(
    layout: Layout<'_>,
    validity: Duration,
    now: SystemTime,
) -> Result<Outcome, GenError> {
    let dir = layout.cert_dir;
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    if !ca_key.exists() {
        return Err(GenError::Unusable(format!(
            "{} is missing: certificates of an external CA cannot be renewed here",
            ca_key.display()
        )));
    }
    let ca = CertificateAuthority::from_pem(&read(&ca_cert)?, &read(&ca_key)?)
        .map_err(|e| GenError::Unusable(e.to_string()))?;
    let mut outcome = Outcome::default();
    for (stem, path) in leaf_files(dir)? {
        reissue_leaf(layout, &stem, &path, &ca, Some(validity), now, &mut outcome)?;
    }
    Ok(outcome)
}

/// Re-issues the certificate `stem` (at `path`) from `ca` with its own key, subject,
/// names and usages, valid for `validity` (or as long as the current one was made for),
/// and puts it into the stem's kubeconfig. A certificate without its key is left alone.
pub(crate) fn reissue_leaf(
    layout: Layout<'_>,
    stem: &str,
    path: &Path,
    ca: &CertificateAuthority,
    validity: Option<Duration>,
    now: SystemTime,
    outcome: &mut Outcome,
) -> Result<(), GenError> {
    let key_path = layout.cert_dir.join(format!("{stem}-key.pem"));
    let Ok(key_pem) = read(&key_path) else {
        return Ok(());
    };
    let key = PrivateKey::from_pem(&key_pem)
        .map_err(|e| GenError::Unusable(format!("{}: {e}", key_path.display())))?;
    let pem = std::fs::read(path).map_err(|e| io(path, e))?;
    let Ok((_, block)) = x509_parser::pem::parse_x509_pem(&pem) else {
        return Ok(());
    };
    let Ok((_, cert)) = X509Certificate::from_der(&block.contents) else {
        return Ok(());
    };
    let name = kubeboot_pki::name::Name::parse(cert.subject())
        .map_err(|e| GenError::Unusable(format!("{}: {e}", path.display())))?;
    let (dns, ips) = kubeboot_pki::chain::sans_of(&cert);
    let made_for = Duration::from_secs(
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()).max(0)
            as u64,
    );
    let id = Identity {
        stem: stem.to_owned(),
        cn: name.common_name,
        orgs: name.organizations,
        dns,
        ips,
        usages: usages_of(&cert),
        kubeconfig: false,
    };
    // The whole subject as it was (a cfssl certificate's C, L, OU and ST too).
    let new = issue_as(
        ca,
        &id,
        name.attributes,
        &key,
        now,
        validity.unwrap_or(made_for),
    )?;
    outcome.write_if_changed(path, new.pem.as_bytes(), Mode::Public)?;
    let kc_path = layout.kubeconfig(stem);
    if let Ok(text) = std::fs::read_to_string(&kc_path) {
        let mut kc = Kubeconfig::from_yaml(&text)
            .map_err(|e| GenError::Unusable(format!("{}: {e}", kc_path.display())))?;
        if kc.client_certificate().is_some() {
            kc.set_client_certificate(&new.pem, None);
        }
        outcome.write_if_changed(&kc_path, kc.to_yaml().as_bytes(), Mode::Private)?;
    }
    Ok(())
}

pub(crate) fn leaf_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, GenError> {
    let mut out: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".pem")?;
            (!stem.ends_with("-key") && stem != "ca" && stem != "ca-next")
                .then(|| (stem.to_owned(), e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The leaves whose key (`<name>-key.pem`) is in `dir` without their certificate.
fn missing_leaves(dir: &Path) -> Result<Vec<String>, GenError> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix("-key.pem")?.to_owned();
            let is_leaf = stem != "ca" && stem != "ca-next";
            (is_leaf && !dir.join(format!("{stem}.pem")).exists()).then_some(stem)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// kubeadm's `certs check-expiration` tables for the certificates in `dir`: a key whose
/// certificate is gone is a `!MISSING!` row, and a certificate that does not read is an
/// error (as kubeadm's `TryLoadCertFromDisk` makes it).
pub fn check_expiration(dir: &Path, now: SystemTime) -> Result<String, GenError> {
    let external = if dir.join("ca-key.pem").exists() {
        "no"
    } else {
        "yes"
    };
    let ca_pem = std::fs::read(dir.join("ca.pem")).map_err(|e| io(&dir.join("ca.pem"), e))?;
    let parse = |pem: &[u8]| -> Option<(String, i64)> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
        let (_, c) = X509Certificate::from_der(&block.contents).ok()?;
        Some((c.issuer().to_string(), c.validity().not_after.timestamp()))
    };
    let (ca_subject, ca_end) = {
        let (_, block) = x509_parser::pem::parse_x509_pem(&ca_pem)
            .map_err(|e| GenError::Unusable(format!("ca.pem: {e}")))?;
        let (_, c) = X509Certificate::from_der(&block.contents)
            .map_err(|e| GenError::Unusable(format!("ca.pem: {e}")))?;
        (c.subject().to_string(), c.validity().not_after.timestamp())
    };
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut rows = vec![[
        "CERTIFICATE".to_owned(),
        "EXPIRES".into(),
        "RESIDUAL TIME".into(),
        "CERTIFICATE AUTHORITY".into(),
        "EXTERNALLY MANAGED".into(),
    ]];
    let mut leaves: Vec<(String, Option<std::path::PathBuf>)> = leaf_files(dir)?
        .into_iter()
        .map(|(stem, path)| (stem, Some(path)))
        .chain(missing_leaves(dir)?.into_iter().map(|stem| (stem, None)))
        .collect();
    leaves.sort();
    for (stem, path) in leaves {
        // A key without its certificate: kubeadm's `!MISSING!` row.
        let Some(path) = path else {
            rows.push([
                format!("!MISSING! {stem}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            continue;
        };
        let text = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let Some((issuer, end)) = parse(&text) else {
            return Err(GenError::Unusable(format!(
                "{}: not a PEM certificate; renew it with `kubeboot certs renew`, or generate it again",
                path.display()
            )));
        };
        let ca = if issuer == ca_subject { "ca" } else { "" };
        rows.push([
            stem,
            expiry_text(end),
            kubeboot_api::clock::short_human_duration(end - now_s),
            ca.into(),
            external.into(),
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    out.push_str(&table(&[
        [
            "CERTIFICATE AUTHORITY".to_owned(),
            "EXPIRES".into(),
            "RESIDUAL TIME".into(),
            "EXTERNALLY MANAGED".into(),
        ],
        [
            "ca".into(),
            expiry_text(ca_end),
            kubeboot_api::clock::short_human_duration(ca_end - now_s),
            external.into(),
        ],
    ]));
    Ok(out)
}

fn expiry_text(ts: i64) -> String {
    let t = ::time::OffsetDateTime::from_unix_timestamp(ts)
        .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:02}, {} {:02}:{:02} UTC",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0) + 3)
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}
