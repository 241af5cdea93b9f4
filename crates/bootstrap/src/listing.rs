//! `kubeadm token list`'s table, byte for byte: kubeadm pads some cells itself, then lays
//! each token out with its own tabwriter (the header shares the first token's).

use std::time::{SystemTime, UNIX_EPOCH};

use kubeboot_api::clock::{parse_rfc3339, short_human_duration};

/// One listed token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// `<id>.<secret>`.
    pub token: String,
    /// `expiration`, as stored (RFC 3339), if any.
    pub expires: Option<String>,
    /// Usages (without the `usage-bootstrap-` prefix), sorted.
    pub usages: Vec<String>,
    /// Description.
    pub description: String,
    /// Extra groups.
    pub groups: Vec<String>,
}

const HEADER: [&str; 6] = [
    "TOKEN",
    "TTL",
    "EXPIRES",
    "USAGES",
    "DESCRIPTION",
    "EXTRA GROUPS",
];

/// The table; empty when there are no tokens.
pub fn format_table(rows: &[TokenRow], now: SystemTime) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells = cells(row, now);
        let mut lines: Vec<Vec<String>> = Vec::new();
        if i == 0 {
            lines.push(HEADER.iter().map(|s| s.to_string()).collect());
        }
        lines.push(cells);
        out.push_str(&tabwrite(&lines));
    }
    out
}

fn cells(row: &TokenRow, now: SystemTime) -> Vec<String> {
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    let (ttl, expires) = match row.expires.as_deref() {
        None => ("<forever>".to_owned(), "<never>".to_owned()),
        Some(e) => match parse_rfc3339(e) {
            Some(t) => (
                short_human_duration(secs(t) - secs(now)),
                kubeboot_api::clock::format_rfc3339(t),
            ),
            None => ("<invalid>".to_owned(), e.to_owned()),
        },
    };
    let or_none = |s: String| if s.is_empty() { "<none>".to_owned() } else { s };
    vec![
        row.token.clone(),
        format!("{ttl:<9}"),
        expires,
        format!("{:<22}", or_none(row.usages.join(","))),
        format!("{:<56}", or_none(row.description.clone())),
        or_none(row.groups.join(",")),
    ]
}

/// Go's `text/tabwriter` with minwidth 10, padding 3, space padding: every cell but the
/// last of a line is padded to its column's width.
fn tabwrite(lines: &[Vec<String>]) -> String {
    let cols = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|s| s.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        for (c, cell) in line.iter().enumerate() {
            if c + 1 == line.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(
                    ' ',
                    widths[c].saturating_sub(cell.chars().count()),
                ));
            }
        }
        out.push('\n');
    }
    out
}

/// A token Secret as `token list` reads it (kubeadm's `BootstrapTokenFromSecret`), with
/// kubeadm's error strings.
pub fn row_from_secret(
    name: &str,
    data: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Result<TokenRow, String> {
    let text = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let id = text("token-id");
    if id.is_empty() {
        return Err(format!(
            "bootstrap Token Secret has no token-id data: {name}"
        ));
    }
    let expected = format!("bootstrap-token-{id}");
    if name != expected {
        return Err(format!(
            "bootstrap token name is not of the form 'bootstrap-token-(token-id)'. Actual: {name:?}. Expected: {expected:?}"
        ));
    }
    let secret = text("token-secret");
    if secret.is_empty() {
        return Err(format!(
            "bootstrap Token Secret has no token-secret data: {name}"
        ));
    }
    let token = format!("{id}.{secret}");
    if token.parse::<crate::BootstrapToken>().is_err() {
        return Err(format!(
            "bootstrap token {name:?} does not match the pattern [a-z0-9]{{6}}.[a-z0-9]{{16}}"
        ));
    }
    let expires = data
        .get("expiration")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    if let Some(e) = &expires
        && parse_rfc3339(e).is_none()
    {
        return Err(format!(
            "can't parse expiration time of bootstrap token {name:?}: {e:?} is not RFC 3339"
        ));
    }
    let mut usages: Vec<String> = data
        .iter()
        .filter(|(_, v)| v.as_slice() == b"true")
        .filter_map(|(k, _)| k.strip_prefix("usage-bootstrap-").map(str::to_owned))
        .collect();
    usages.sort();
    let groups = text("auth-extra-groups");
    Ok(TokenRow {
        token,
        expires,
        usages,
        description: text("description"),
        groups: if groups.is_empty() {
            vec![]
        } else {
            groups.split(',').map(str::to_owned).collect()
        },
    })
}

/// The join command kubeadm prints (`--print-join-command`), with `kubeboot join`:
/// `<host:port>` is the server URL without `https://`; one pin per CA certificate; the line
/// ends with a space, as kubeadm's does.
pub fn join_command(server_url: &str, token: &str, pins: &[String]) -> String {
    let mut out = format!(
        "kubeboot join {} --token {token} ",
        server_url.replace("https://", "")
    );
    for p in pins {
        out.push_str(&format!("--discovery-token-ca-cert-hash {p} "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_reference_example_byte_for_byte() {
        let now = UNIX_EPOCH + Duration::from_secs(1_714_644_000 - 23 * 3600 - 60); // 23h1m before expiry
        let rows = [
            TokenRow {
                token: "abcdef.0123456789abcdef".into(),
                expires: Some("2024-05-02T10:00:00Z".into()),
                usages: vec!["authentication".into(), "signing".into()],
                description: "The default bootstrap token generated by 'kubeadm init'.".into(),
                groups: vec!["system:bootstrappers:kubeadm:default-node-token".into()],
            },
            TokenRow {
                token: "ghijkl.0123456789abcdef".into(),
                expires: None,
                usages: vec!["signing".into()],
                description: String::new(),
                groups: vec![],
            },
        ];
        let want = "TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION                                                EXTRA GROUPS\n\
abcdef.0123456789abcdef   23h         2024-05-02T10:00:00Z   authentication,signing   The default bootstrap token generated by 'kubeadm init'.   system:bootstrappers:kubeadm:default-node-token\n\
ghijkl.0123456789abcdef   <forever>   <never>   signing                  <none>                                                     <none>\n";
        assert_eq!(format_table(&rows, now), want);
        assert_eq!(format_table(&[], now), "");
    }
}
