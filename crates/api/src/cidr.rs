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

#[cfg(test)]
mod tests {
    use super::*;

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
