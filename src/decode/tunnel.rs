//! Tunnels: the packet inside GRE (RFC 2784/2890, with IP, MPLS, Ethernet or, from Aruba's
//! controllers, 802.11 payload), PPTP's
//! enhanced GRE carrying PPP (RFC 2637), ERSPAN types I, II and III, IP-in-IP and
//! IPv6-in-IP (IP protocols 4 and 41), L2TPv2 data on UDP 1701 (RFC 2661), VXLAN on UDP
//! 4789 (RFC 7348), and what AH protects (RFC 4302, transport or tunnel mode).
//!
//! One level only: a tunnel inside a tunnel is reported as the inner packet's own protocol.
//! ESP is encrypted and has no inner packet to read.

use super::{
    be16, ip, link, wireless, Decoded, EtherType, Fragment, IpProto, Layer, Link, Protocol, Skip,
    Upper,
};

/// A kind of tunnel, as reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tunnel {
    Gre,
    Pptp,
    Erspan,
    IpInIp,
    L2tp,
    Vxlan,
    Ah,
}

const PORT_L2TP: u16 = 1701;
const PORT_VXLAN: u16 = 4789;

/// The GRE sequence-number flag (RFC 2890): ERSPAN type II has its header when set.
const GRE_SEQUENCE: u16 = 0x1000;
/// ERSPAN type III's O bit: an 8-byte platform sub-header follows its 12 bytes.
const ERSPAN_3_LEN: usize = 12;
const ERSPAN_3_PLATFORM_LEN: usize = 20;
const ERSPAN_2_LEN: usize = 8;
const VXLAN_LEN: usize = 8;
/// Cisco MetaData in GRE: the payload's ethertype, version, length, an option and the tag,
/// 8 bytes, then the packet (as Wireshark reads it).
const CISCO_METADATA_LEN: usize = 8;

impl Tunnel {
    pub const ALL: [Tunnel; 7] = [
        Tunnel::Gre,
        Tunnel::Pptp,
        Tunnel::Erspan,
        Tunnel::IpInIp,
        Tunnel::L2tp,
        Tunnel::Vxlan,
        Tunnel::Ah,
    ];

    /// The name in JSON, CSV, the table and `--flows`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::Gre => "gre",
            Tunnel::Pptp => "pptp",
            Tunnel::Erspan => "erspan",
            Tunnel::IpInIp => "ip-in-ip",
            Tunnel::L2tp => "l2tp",
            Tunnel::Vxlan => "vxlan",
            Tunnel::Ah => "ah",
        }
    }

    /// A small number, 1 to 7: an index into per-kind arrays, and part of a tunnel's hash.
    pub fn code(self) -> u8 {
        match self {
            Tunnel::Gre => 1,
            Tunnel::Pptp => 2,
            Tunnel::Erspan => 3,
            Tunnel::IpInIp => 4,
            Tunnel::L2tp => 5,
            Tunnel::Vxlan => 6,
            Tunnel::Ah => 7,
        }
    }
}

impl serde::Serialize for Tunnel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inner packet and its payload, or why there is none.
pub type Inner<'a> = Result<(Decoded, &'a [u8]), Skip>;

/// The packet inside `outer`, given the payload [`super::decode`] returned with it.
///
/// `None` when `outer` is no tunnel portscope decodes (or a later fragment of one). Otherwise
/// the tunnel kind and the inner packet, or why it has none (an L2TP control message, PPP's
/// LCP, ARP over VXLAN, a cut-short header); the inner payload comes with it.
///
/// Not inlined: callers test [`may_carry`] first, so this runs for tunnel packets only and
/// stays out of the hot path's code.
#[inline(never)]
pub fn inner<'a>(outer: &Decoded, payload: &'a [u8]) -> Option<(Tunnel, Inner<'a>)> {
    if !may_carry(outer) {
        return None;
    }
    let mut vlan = 0;
    let (tunnel, packet) = match (outer.ip.proto, outer.upper) {
        (IpProto::IPIP | IpProto::IPV6, _) => (Tunnel::IpInIp, Ok(payload)),
        (IpProto::GRE, Upper::Gre { proto, flags, .. }) => gre(proto, flags, payload, &mut vlan),
        (
            _,
            Upper::Ports {
                dst: PORT_VXLAN, ..
            },
        ) => (Tunnel::Vxlan, vxlan(payload, &mut vlan)),
        (IpProto::UDP, _) => (Tunnel::L2tp, l2tp(payload, &mut vlan)),
        (_, Upper::Ah { next, .. }) => return Some((Tunnel::Ah, ah(outer, next, payload))),
        _ => return None,
    };
    let decoded = packet.and_then(|p| ip::decode(p, vlan));
    Some((tunnel, decoded))
}

/// Whether `outer` is a packet of a tunnel portscope opens: the cheap test every packet
/// takes, before anything is built.
#[inline(always)]
pub fn may_carry(outer: &Decoded) -> bool {
    // One test for the protocols that can carry a tunnel: 4, 17, 41, 47 and 51.
    const CARRIERS: u64 = 1 << IpProto::IPIP.0
        | 1 << IpProto::UDP.0
        | 1 << IpProto::IPV6.0
        | 1 << IpProto::GRE.0
        | 1 << IpProto::AH.0;
    let proto = outer.ip.proto;
    if proto.0 >= 64 || CARRIERS >> proto.0 & 1 == 0 {
        return false;
    }
    if matches!(outer.ip.fragment, Fragment::Later(_)) {
        return false;
    }
    match (proto, outer.upper) {
        (IpProto::IPIP | IpProto::IPV6, _) => true,
        (IpProto::GRE, Upper::Gre { .. }) | (IpProto::AH, Upper::Ah { .. }) => true,
        (IpProto::UDP, Upper::Ports { src, dst, .. }) => {
            dst == PORT_VXLAN || src == PORT_L2TP || dst == PORT_L2TP
        }
        _ => false,
    }
}

fn gre<'a>(
    proto: EtherType,
    flags: u16,
    payload: &'a [u8],
    vlan: &mut u16,
) -> (Tunnel, Result<&'a [u8], Skip>) {
    match proto {
        EtherType::PPP => (Tunnel::Pptp, ppp(payload, vlan)),
        EtherType::TEB => (Tunnel::Gre, link::strip(Link::Ethernet, payload, vlan)),
        // Type I has no ERSPAN header; type II has 8 bytes, flagged by the GRE sequence bit.
        EtherType::ERSPAN_2 => {
            let skip = if flags & GRE_SEQUENCE != 0 {
                ERSPAN_2_LEN
            } else {
                0
            };
            (Tunnel::Erspan, ethernet_at(payload, skip, vlan))
        }
        // Type III: 12 bytes, then an 8-byte platform sub-header when the O bit is set.
        EtherType::ERSPAN_3 => {
            let skip = match payload.get(ERSPAN_3_LEN - 1) {
                Some(b) if b & 0x01 != 0 => ERSPAN_3_PLATFORM_LEN,
                _ => ERSPAN_3_LEN,
            };
            (Tunnel::Erspan, ethernet_at(payload, skip, vlan))
        }
        EtherType::CISCO_METADATA => match (be16(payload, 0), payload.get(CISCO_METADATA_LEN..)) {
            (Some(ethertype), Some(rest)) => (
                Tunnel::Gre,
                link::ethertype_payload(EtherType(ethertype), rest, vlan),
            ),
            _ => (Tunnel::Gre, Err(Skip::Truncated(Layer::Link))),
        },
        // Aruba's mirror of 802.11 traffic: the frame without radio header.
        aruba if aruba.is_aruba_wlan() => (Tunnel::Gre, wireless::ieee80211(payload, vlan)),
        ethertype => (
            Tunnel::Gre,
            link::ethertype_payload(ethertype, payload, vlan),
        ),
    }
}

fn ethernet_at<'a>(payload: &'a [u8], skip: usize, vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let frame = payload.get(skip..).ok_or(Skip::Truncated(Layer::Link))?;
    link::strip(Link::Ethernet, frame, vlan)
}

/// A PPP frame with or without its 0xff 0x03 address and control.
fn ppp<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let rest = match frame {
        [0xff, 0x03, rest @ ..] => rest,
        rest => rest,
    };
    link::ppp_payload(rest, vlan)
}

/// VXLAN: 8 bytes with the I flag set, then an Ethernet frame.
fn vxlan<'a>(payload: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    match payload.first() {
        Some(flags) if flags & 0x08 != 0 => ethernet_at(payload, VXLAN_LEN, vlan),
        Some(_) => Err(Skip::NotIp(Protocol::TunnelControl)),
        None => Err(Skip::Truncated(Layer::Link)),
    }
}

/// L2TPv2 (RFC 2661 section 3.1): data messages carry PPP; control messages carry none.
fn l2tp<'a>(payload: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let flags = be16(payload, 0).ok_or(truncated)?;
    if flags & 0x8000 != 0 || flags & 0x000f != 2 {
        return Err(Skip::NotIp(Protocol::TunnelControl));
    }
    let mut at = 2;
    if flags & 0x4000 != 0 {
        at += 2;
    }
    at += 4; // tunnel and session ids
    if flags & 0x0800 != 0 {
        at += 4; // Ns and Nr
    }
    if flags & 0x0200 != 0 {
        at += 2 + usize::from(be16(payload, at).ok_or(truncated)?);
    }
    ppp(payload.get(at..).ok_or(truncated)?, vlan)
}

/// What AH protects (`next`): an IP packet in tunnel mode, or in transport mode the
/// upper-layer header, read as if AH were not there. Other payloads (IPComp's compressed
/// data, for one) hold no packet to read.
fn ah<'a>(outer: &Decoded, next: IpProto, payload: &'a [u8]) -> Inner<'a> {
    match next {
        IpProto::IPIP | IpProto::IPV6 => {
            return ip::decode(payload, 0);
        }
        IpProto::ICMP
        | IpProto::TCP
        | IpProto::UDP
        | IpProto::GRE
        | IpProto::ESP
        | IpProto::ICMPV6 => {}
        other => return Err(Skip::NotIp(Protocol::IpProto(other))),
    }
    let (upper, rest) = ip::transport(next, payload);
    let d = Decoded {
        vlan: outer.vlan,
        ip: super::Ip {
            proto: next,
            ..outer.ip
        },
        upper,
    };
    Ok((d, rest))
}

#[cfg(test)]
mod tests {
    use super::super::{decode, test_util::eth_tcp4};
    use super::*;

    /// An Ethernet/IPv4 frame of `proto` carrying `payload`.
    fn ipv4_with(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = eth_tcp4(1, 2, b"");
        f.truncate(34);
        f[23] = proto;
        f.extend_from_slice(payload);
        let total = u16::try_from(f.len() - 14).unwrap().to_be_bytes();
        f[16..18].copy_from_slice(&total);
        f
    }

    fn unwrap(frame: &[u8]) -> (Tunnel, Result<Decoded, Skip>) {
        let (outer, payload) = decode(Link::Ethernet, frame).unwrap();
        let (t, d) = inner(&outer, payload).unwrap();
        (t, d.map(|(d, _)| d))
    }

    fn inner_ip() -> Vec<u8> {
        eth_tcp4(50000, 445, b"smb")[14..].to_vec()
    }

    #[test]
    fn aruba_gre_carries_80211() {
        // GRE of `proto`: a data frame to the AP, LLC/SNAP, the packet.
        let gre = |proto: [u8; 2], fc: [u8; 2]| {
            let mut f = vec![0x00, 0x00, proto[0], proto[1], fc[0], fc[1], 0, 0];
            f.extend_from_slice(&[0; 18]);
            f.extend_from_slice(&[0, 0, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
            f.extend_from_slice(&inner_ip());
            ipv4_with(47, &f)
        };
        for proto in [[0x82, 0x00], [0x82, 0xa0], [0x83, 0x70]] {
            let (t, d) = unwrap(&gre(proto, [0x08, 0x01]));
            assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Gre, 445));
        }
        // Protected, and a beacon: 802.11 without IP.
        let not_ip = Err(Skip::NotIp(Protocol::Wlan));
        assert_eq!(
            unwrap(&gre([0x82, 0x00], [0x08, 0x41])),
            (Tunnel::Gre, not_ip)
        );
        assert_eq!(
            unwrap(&gre([0x82, 0x10], [0x80, 0x00])),
            (Tunnel::Gre, not_ip)
        );
        // Not one of Aruba's 802.11 types: an unknown ethertype.
        assert_eq!(
            unwrap(&gre([0x82, 0x01], [0x08, 0x01])).1,
            Err(Skip::NotIp(Protocol::EtherType(EtherType(0x8201))))
        );
    }

    #[test]
    fn gre_ip_ethernet_and_mpls() {
        let mut gre = vec![0, 0, 0x08, 0x00];
        gre.extend_from_slice(&inner_ip());
        let (t, d) = unwrap(&ipv4_with(47, &gre));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Gre, 445));

        let mut teb = vec![0x20, 0, 0x65, 0x58, 0, 0, 0, 9]; // key present (NVGRE)
        teb.extend_from_slice(&eth_tcp4(50000, 445, b"smb"));
        let (t, d) = unwrap(&ipv4_with(47, &teb));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Gre, 445));

        let mut mpls = vec![0, 0, 0x88, 0x47, 0x00, 0x01, 0x01, 0x40];
        mpls.extend_from_slice(&inner_ip());
        let (t, d) = unwrap(&ipv4_with(47, &mpls));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Gre, 445));
    }

    #[test]
    fn pptp_carries_ppp() {
        // Version 1, key and sequence present: 12 bytes; then PPP with address and control.
        let mut pptp = vec![0x30, 0x01, 0x88, 0x0b, 0, 20, 0, 1, 0, 0, 0, 7];
        pptp.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
        pptp.extend_from_slice(&inner_ip());
        let (t, d) = unwrap(&ipv4_with(47, &pptp));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Pptp, 445));
        // An acknowledgment-only packet has no PPP frame.
        let ack = [0x20, 0x81, 0x88, 0x0b, 0, 0, 0, 1, 0, 0, 0, 7];
        let (t, d) = unwrap(&ipv4_with(47, &ack));
        assert_eq!(t, Tunnel::Pptp);
        assert!(d.is_err());
    }

    #[test]
    fn erspan_types() {
        let eth = eth_tcp4(50000, 445, b"smb");
        let mut one = vec![0, 0, 0x88, 0xbe];
        one.extend_from_slice(&eth);
        let mut two = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0];
        two.extend_from_slice(&eth);
        let mut three = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
        three.extend_from_slice(&[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]); // O set
        three.extend_from_slice(&[0; 8]);
        three.extend_from_slice(&eth);
        for gre in [one, two, three] {
            let (t, d) = unwrap(&ipv4_with(47, &gre));
            assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Erspan, 445));
        }
    }

    #[test]
    fn ip_in_ip_l2tp_vxlan_and_ah() {
        let (t, d) = unwrap(&ipv4_with(4, &inner_ip()));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::IpInIp, 445));

        let udp = |sport: u16, dport: u16, body: &[u8]| {
            let mut u = sport.to_be_bytes().to_vec();
            u.extend_from_slice(&dport.to_be_bytes());
            u.extend_from_slice(&u16::try_from(body.len() + 8).unwrap().to_be_bytes());
            u.extend_from_slice(&[0, 0]);
            u.extend_from_slice(body);
            ipv4_with(17, &u)
        };
        // L2TP data with length and sequence: flags 0x4802.
        let mut l2tp = vec![
            0x48, 0x02, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0xff, 0x03, 0, 0x21,
        ];
        l2tp.extend_from_slice(&inner_ip());
        let (t, d) = unwrap(&udp(1701, 1701, &l2tp));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::L2tp, 445));
        let control = [0xc8, 0x02, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0];
        let (t, d) = unwrap(&udp(1701, 1701, &control));
        assert_eq!(
            (t, d),
            (Tunnel::L2tp, Err(Skip::NotIp(Protocol::TunnelControl)))
        );

        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&eth_tcp4(50000, 445, b"smb"));
        let (t, d) = unwrap(&udp(40000, 4789, &vx));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Vxlan, 445));

        // AH (24 bytes) in transport mode over TCP: the ports behind it.
        let mut ah = vec![6, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
        ah.extend_from_slice(&[0; 12]);
        ah.extend_from_slice(&inner_ip()[20..]);
        let (t, d) = unwrap(&ipv4_with(51, &ah));
        let d = d.unwrap();
        assert_eq!(
            (t, d.ip.proto, d.ports().unwrap().1),
            (Tunnel::Ah, IpProto::TCP, 445)
        );
        ah[0] = 4;
        ah.truncate(24);
        ah.extend_from_slice(&inner_ip());
        let (t, d) = unwrap(&ipv4_with(51, &ah));
        assert_eq!((t, d.unwrap().ports().unwrap().1), (Tunnel::Ah, 445));
    }

    #[test]
    fn codes_are_distinct_and_small() {
        let codes: std::collections::BTreeSet<u8> = Tunnel::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, (1..=7).collect());
    }

    #[test]
    fn other_packets_are_no_tunnel() {
        let frame = eth_tcp4(1701, 4789, b"x");
        let (outer, payload) = decode(Link::Ethernet, &frame).unwrap();
        assert!(inner(&outer, payload).is_none());
        let esp = ipv4_with(50, &[0, 0, 0, 1, 0, 0, 0, 1]);
        let (outer, payload) = decode(Link::Ethernet, &esp).unwrap();
        assert!(inner(&outer, payload).is_none());
    }

    #[test]
    fn arbitrary_inner_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(proto in prop::sample::select(vec![4u8, 41, 47, 51, 17]), bytes in prop::collection::vec(any::<u8>(), 0..120))| {
            let frame = ipv4_with(proto, &bytes);
            if let Ok((outer, payload)) = decode(Link::Ethernet, &frame) {
                let _ = inner(&outer, payload);
            }
        });
        // Arbitrary 802.11 frames in Aruba's GRE types, which random bytes rarely name.
        proptest!(|(step in 0u16..24, bytes in prop::collection::vec(any::<u8>(), 0..120))| {
            let mut gre = vec![0, 0];
            gre.extend_from_slice(&(0x8200 + step * 0x10).to_be_bytes());
            gre.extend_from_slice(&bytes);
            let frame = ipv4_with(47, &gre);
            let (outer, payload) = decode(Link::Ethernet, &frame).unwrap();
            prop_assert!(matches!(inner(&outer, payload), Some((Tunnel::Gre, _))));
        });
    }
}
