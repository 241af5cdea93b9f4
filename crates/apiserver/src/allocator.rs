//! What a Service is given from the cluster's ranges, as kube-apiserver allocates it: a
//! ClusterIP from `--service-cluster-ip-range` and NodePorts from
//! `--service-node-port-range`. Each range has a lower "static" band, kept for addresses
//! an operator chooses (the DNS service's `10.96.0.10`), and picks from the upper band
//! first (`calculateRangeOffset`). This module holds the pure rules; the reservations
//! themselves are objects created in the store (`handlers::services`), so two servers never
//! hand out one address.

use std::collections::HashSet;
use std::net::IpAddr;

/// The addresses of `--service-cluster-ip-range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceCidr {
    network: IpAddr,
    prefix: u8,
}

impl ServiceCidr {
    /// Parses `10.96.0.0/12` (or an IPv6 CIDR); host bits are masked off, as Go's
    /// `ParseCIDR` does.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.contains(',') {
            return Err(format!(
                "--service-cluster-ip-range {s:?}: a dual-stack range is not supported; give one CIDR"
            ));
        }
        let invalid = || {
            format!(
                "--service-cluster-ip-range {s:?} is not a valid CIDR (for example 10.96.0.0/12)"
            )
        };
        let (ip, prefix) = kubeboot_api::cidr::parse(s.trim()).ok_or_else(invalid)?;
        let bits = bits(ip);
        if bits - prefix < 3 {
            return Err(format!(
                "--service-cluster-ip-range {s:?}: the service cluster IP range must be at least 8 IP addresses"
            ));
        }
        if bits == 128 && prefix < 64 {
            return Err(format!(
                "--service-cluster-ip-range {s:?}: an IPv6 range may not be larger than a /64"
            ));
        }
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (bits - prefix)
        };
        Ok(Self {
            network: from_u128(ip, to_u128(ip) & mask),
            prefix,
        })
    }

    /// `IPv4` or `IPv6`, as `spec.ipFamilies` names it.
    pub fn family(&self) -> &'static str {
        match self.network {
            IpAddr::V4(_) => "IPv4",
            IpAddr::V6(_) => "IPv6",
        }
    }

    /// How many addresses may be allocated: all but the network address (and, for IPv4,
    /// the broadcast address), capped at `u64::MAX`.
    pub fn size(&self) -> u64 {
        let host_bits = bits(self.network) - self.prefix;
        let all = if host_bits >= 64 {
            u64::MAX
        } else {
            1u64 << host_bits
        };
        match self.network {
            IpAddr::V4(_) => all.saturating_sub(2),
            IpAddr::V6(_) => all.saturating_sub(1),
        }
    }

    /// The `index`th allocatable address (0 is the one after the network address: the
    /// `kubernetes` service's).
    pub fn at(&self, index: u64) -> Option<IpAddr> {
        (index < self.size())
            .then(|| from_u128(self.network, to_u128(self.network) + u128::from(index) + 1))
    }

    /// The index of `ip` in the range, or `None` when it is not one of its allocatable
    /// addresses.
    pub fn index_of(&self, ip: IpAddr) -> Option<u64> {
        if bits(ip) != bits(self.network) {
            return None;
        }
        let offset = to_u128(ip).checked_sub(to_u128(self.network) + 1)?;
        u64::try_from(offset).ok().filter(|i| *i < self.size())
    }

    /// The size of the static band: a sixteenth of the CIDR, at least 16 and at most 256
    /// (none for a /28 or smaller).
    pub fn static_band(&self) -> u64 {
        let host_bits = u32::from(bits(self.network) - self.prefix);
        let cidr_size = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
        range_offset(cidr_size, 16, 256)
    }

    /// The range as written: `10.96.0.0/12`.
    pub fn as_string(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }
}

/// Why `ip` cannot be asked for in `cidr`, as kube-apiserver's allocator says it: an
/// address of another network, or the network or broadcast address of this one.
pub fn out_of_range(cidr: &ServiceCidr, ip: IpAddr) -> Option<String> {
    if cidr.index_of(ip).is_some() {
        return None;
    }
    let host_bits = u32::from(bits(cidr.network) - cidr.prefix);
    let same_network = bits(ip) == bits(cidr.network)
        && to_u128(ip).checked_shr(host_bits).unwrap_or(0)
            == to_u128(cidr.network).checked_shr(host_bits).unwrap_or(0);
    Some(if same_network {
        format!(
            "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
            cidr.as_string()
        )
    } else {
        "the provided network does not match the current range".to_owned()
    })
}

/// The ports of `--service-node-port-range` (`30000-32767`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub base: u16,
    /// How many ports.
    pub size: u16,
}

impl PortRange {
    /// Parses `30000-32767` or `30000+2767`, as kube-apiserver's flag does.
    pub fn parse(s: &str) -> Result<Self, String> {
        let invalid = || {
            format!("--service-node-port-range {s:?} is not a port range (for example 30000-32767)")
        };
        let num = |v: &str| v.trim().parse::<u16>().map_err(|_| invalid());
        let (base, last) = if let Some((a, b)) = s.split_once('-') {
            (num(a)?, num(b)?)
        } else if let Some((a, b)) = s.split_once('+') {
            let base = num(a)?;
            (base, base.checked_add(num(b)?).ok_or_else(invalid)?)
        } else {
            let p = num(s)?;
            (p, p)
        };
        if base == 0 || last < base {
            return Err(invalid());
        }
        Ok(Self {
            base,
            size: last - base + 1,
        })
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        port >= self.base && u32::from(port) < u32::from(self.base) + u32::from(self.size)
    }

    /// The size of the static band: a thirty-second of the range, at least 16 and at most
    /// 128 (none for 16 ports or fewer).
    pub fn static_band(&self) -> u64 {
        range_offset(u128::from(self.size), 32, 128)
    }

    /// The range as kube-apiserver's errors print it: `30000-32767`.
    pub fn as_string(&self) -> String {
        format!(
            "{}-{}",
            self.base,
            u32::from(self.base) + u32::from(self.size) - 1
        )
    }
}

/// `calculateRangeOffset`: `size / step`, at least 16 and at most `max`; none for a range
/// of 16 or fewer.
fn range_offset(size: u128, step: u128, max: u64) -> u64 {
    if size <= 16 {
        return 0;
    }
    u64::try_from(size / step)
        .unwrap_or(u64::MAX)
        .clamp(16, max)
}

/// How many candidates a dynamic allocation looks at before it calls the range full (a
/// range larger than this is never full in practice; a smaller one is looked at whole).
pub const MAX_CANDIDATES: u64 = 1 << 16;

/// The first free index of a dynamic allocation in a range of `size` whose first `band`
/// indexes are the static band: from `start` (a random point of the upper band) to the end
/// of the range, then the rest of the upper band, then the static band; `None` when every
/// candidate is taken.
pub fn free_index(size: u64, band: u64, start: u64, taken: &HashSet<u64>) -> Option<u64> {
    let band = band.min(size);
    let upper = size - band;
    let start = if upper == 0 { 0 } else { start % upper };
    let upper_order = (0..upper).map(|i| band + (start + i) % upper);
    upper_order
        .chain(0..band)
        .take(MAX_CANDIDATES as usize)
        .find(|i| !taken.contains(i))
}

fn bits(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(family: IpAddr, n: u128) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4((n as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(n.into()),
    }
}

#[cfg(test)]
mod tests;
