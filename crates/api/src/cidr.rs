//! CIDR notation as Go's `net.ParseCIDR` reads it: an address, `/`, and a decimal prefix
//! length no longer than the address.

use std::net::IpAddr;

/// The address and prefix length of `s` (`10.0.0.0/8`, `2001:db8::/64`), the address as
/// written (host bits kept); none when `s` is not a CIDR.
pub fn parse(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = prefix.parse().ok()?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= bits).then_some((ip, prefix))
}

/// [`parse`] as Kubernetes reads the CIDRs of fields that predate its strict IP rules (a
/// Node's `spec.podCIDRs`, `netutils.ParseCIDRSloppy`): an IPv4 octet may also have
/// leading zeros, read as decimal (`010.0.0.0/8` is `10.0.0.0/8`), as Go read them before
/// 1.17.
pub fn parse_sloppy(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = s.split_once('/')?;
    let ip = ip_sloppy(ip)?;
    parse(&format!("{ip}/{prefix}")).map(|(_, bits)| (ip, bits))
}

/// An IP address as `netutils.ParseIPSloppy` reads it: IPv4 octets may have leading zeros,
/// also in the dotted tail of an IPv6 address (`::ffff:010.1.2.3`).
fn ip_sloppy(s: &str) -> Option<IpAddr> {
    match s.rsplit_once(':') {
        None => ipv4_sloppy(s).map(IpAddr::V4),
        Some((head, tail)) if tail.contains('.') => {
            let v4 = ipv4_sloppy(tail)?;
            format!("{head}:{v4}").parse().ok()
        }
        Some(_) => s.parse().ok(),
    }
}

/// Four decimal octets of any number of digits each, none over 255 (Go 1.16's `parseIPv4`).
fn ipv4_sloppy(s: &str) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = part.trim_start_matches('0');
        *octet = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
    }
    parts
        .next()
        .is_none()
        .then_some(std::net::Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_cidrs_read_ipv4_leading_zeros_as_decimal() {
        for (s, want) in [
            ("010.001.0.0/16", Some("10.1.0.0/16")),
            ("10.0.0.0/8", Some("10.0.0.0/8")),
            ("0000010.0.0.0/08", Some("10.0.0.0/8")),
            ("::ffff:010.1.2.3/128", Some("::ffff:10.1.2.3/128")),
            ("2001:db8::/64", Some("2001:db8::/64")),
            ("256.0.0.0/8", None),
            ("0256.0.0.0/8", None),
            ("10.0.0/8", None),
            ("10.0.0.0.0/8", None),
            ("10..0.0/8", None),
            ("+10.0.0.0/8", None),
            ("010.0.0.0/33", None),
            ("010.0.0.0", None),
        ] {
            let got = parse_sloppy(s).map(|(ip, bits)| format!("{ip}/{bits}"));
            assert_eq!(got.as_deref(), want, "{s}");
        }
        assert_eq!(
            parse("010.0.0.0/8"),
            None,
            "the strict reading refuses them"
        );
    }

    #[test]
    fn cidrs_read_as_go_reads_them() {
        for (s, ok) in [
            ("10.0.0.0/8", true),
            ("10.1.2.3/32", true),
            ("2001:db8::/64", true),
            ("::/0", true),
            ("10.0.0.0/33", false),
            ("10.0.0.0/+8", false),
            ("10.0.0.0/", false),
            ("10.0.0.0", false),
            ("not-a-cidr", false),
            ("2001:db8::/129", false),
        ] {
            assert_eq!(parse(s).is_some(), ok, "{s}");
        }
    }
}
