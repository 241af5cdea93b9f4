use super::*;

#[test]
fn a_service_cidr_reads_as_go_reads_it() {
    let c = ServiceCidr::parse("10.96.0.0/12").unwrap();
    assert_eq!(c.as_string(), "10.96.0.0/12");
    assert_eq!(c.family(), "IPv4");
    assert_eq!(c.size(), (1 << 20) - 2);
    assert_eq!(c.at(0), Some("10.96.0.1".parse().unwrap()));
    assert_eq!(c.at(9), Some("10.96.0.10".parse().unwrap()));
    assert_eq!(c.at(c.size() - 1), Some("10.111.255.254".parse().unwrap()));
    assert_eq!(c.at(c.size()), None);
    // Host bits are masked off.
    assert_eq!(
        ServiceCidr::parse("10.96.3.4/12").unwrap().as_string(),
        "10.96.0.0/12"
    );
    let v6 = ServiceCidr::parse("fd00:10:96::/112").unwrap();
    assert_eq!(v6.family(), "IPv6");
    assert_eq!(v6.size(), 65535);
    assert_eq!(v6.at(0), Some("fd00:10:96::1".parse().unwrap()));
    assert_eq!(
        ServiceCidr::parse("fd00::/64").unwrap().size(),
        u64::MAX - 1
    );
    for bad in [
        "10.96.0.0",
        "10.96.0.0/33",
        "x/12",
        "10.0.0.0/30",
        "fd00::/48",
        "10.0.0.0/24,fd00::/112",
    ] {
        assert!(ServiceCidr::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn only_the_allocatable_addresses_have_an_index() {
    let c = ServiceCidr::parse("10.0.0.0/24").unwrap();
    let idx = |s: &str| c.index_of(s.parse().unwrap());
    assert_eq!(idx("10.0.0.1"), Some(0));
    assert_eq!(idx("10.0.0.254"), Some(253));
    assert_eq!(idx("10.0.0.0"), None, "the network address");
    assert_eq!(idx("10.0.0.255"), None, "the broadcast address");
    assert_eq!(idx("10.0.1.1"), None);
    assert_eq!(idx("fd00::1"), None);
}

#[test]
fn an_address_outside_the_range_is_refused_as_kubernetes_words_it() {
    let c = ServiceCidr::parse("10.96.0.0/12").unwrap();
    let why = |ip: &str| out_of_range(&c, ip.parse().unwrap());
    assert_eq!(why("10.96.0.10"), None);
    assert_eq!(
        why("10.96.0.0").unwrap(),
        "the provided IP (10.96.0.0) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
    );
    assert_eq!(
        why("10.111.255.255").unwrap(),
        "the provided IP (10.111.255.255) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
    );
    assert_eq!(
        why("1.1.1.1").unwrap(),
        "the provided network does not match the current range"
    );
    assert_eq!(
        why("fd00::1").unwrap(),
        "the provided network does not match the current range"
    );
}

#[test]
fn node_port_ranges_read_both_ways() {
    let r = PortRange::parse("30000-32767").unwrap();
    assert_eq!((r.base, r.size), (30000, 2768));
    assert_eq!(PortRange::parse("30000+2767").unwrap(), r);
    assert!(r.contains(30000) && r.contains(32767));
    assert!(!r.contains(29999) && !r.contains(32768));
    assert_eq!(r.as_string(), "30000-32767");
    for bad in ["", "32767-30000", "0-10", "a-b", "65535+1"] {
        assert!(PortRange::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_static_band_is_a_sixteenth_of_the_cidr_or_a_thirty_second_of_the_ports() {
    for (cidr, band) in [
        ("10.0.0.0/28", 0),
        ("10.0.0.0/27", 16),
        ("10.0.0.0/24", 16),
        ("10.0.0.0/20", 256),
        ("10.96.0.0/12", 256),
        ("fd00::/64", 256),
    ] {
        assert_eq!(
            ServiceCidr::parse(cidr).unwrap().static_band(),
            band,
            "{cidr}"
        );
    }
    for (ports, band) in [
        ("30000-30015", 0),
        ("30000-30999", 31),
        ("30000-32767", 86),
        ("1-65535", 128),
    ] {
        assert_eq!(
            PortRange::parse(ports).unwrap().static_band(),
            band,
            "{ports}"
        );
    }
}

#[test]
fn dynamic_allocation_takes_the_upper_band_first_then_the_static_band() {
    // 254 addresses: the first 16 are static.
    let none = HashSet::new();
    assert_eq!(free_index(254, 16, 0, &none), Some(16));
    assert_eq!(free_index(254, 16, 5, &none), Some(21));
    assert_eq!(free_index(254, 16, 238, &none), Some(16), "the start wraps");
    let upper_taken: HashSet<u64> = (16..254).collect();
    assert_eq!(free_index(254, 16, 7, &upper_taken), Some(0));
    let all: HashSet<u64> = (0..254).collect();
    assert_eq!(free_index(254, 16, 7, &all), None);
    // Past the taken ones, wrapping around the upper band.
    let some: HashSet<u64> = [250, 251, 252, 253].into();
    assert_eq!(free_index(254, 16, 234, &some), Some(16));
    // A range too small for a static band is all dynamic.
    assert_eq!(free_index(6, 0, 4, &none), Some(4));
}
