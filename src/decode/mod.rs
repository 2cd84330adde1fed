//! Packet decoding: from a link-layer frame to the few fields flows and classification need.
//!
//! The decoder is a small hand-written parser in the style of smoltcp's wire views. It
//! decodes as far as the bytes allow, so a frame cut short by the snapshot length still
//! yields its addresses (and its ports if the first four bytes of the transport header are
//! there); anything it cannot use is a [`Skip`], which the caller counts. The result is a
//! small `Copy` value: the VLAN, the [`Ip`] layer, then what follows it ([`Upper`]).
//!
//! # The panic contract
//! Every header is read in one of two ways, and no other: as a fixed-size array taken after
//! its one length check ([`array`], `first_chunk`), whose fields are then constant indices
//! named in a `field` module beside the parser (the compiler checks them, so they cannot
//! fail); or, for fields at variable offsets, through `get`, [`be16`] and [`be32`], which
//! return `None` past the end. Slices after a checked prefix (`&p[N..]` once `p.get(..N)`
//! succeeded) are the only other indexing. So no input makes it panic or read outside its
//! frame; nothing is allocated and nothing is written but the returned value.
//!
//! It does not know about flows, the catalog, or where the bytes came from. etherparse builds
//! the packets of the test suite and the generator, and checks this parser in tests; the hot
//! path keeps its own reader because it needs lax port extraction from truncated transport
//! headers, fragment ids and ESP SPIs in one pass without building header structs.

mod ip;
mod link;
mod numbers;
mod rare;
mod tunnel;
mod wireless;

pub use ip::mapped;
pub use link::Link;
pub use numbers::{EtherType, IpProto};
pub use tunnel::{inner, may_carry, Inner, Tunnel};

/// Where an IP packet's payload stands in a fragmented datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// Not fragmented (or an IPv6 atomic fragment).
    #[default]
    None,
    /// The first fragment (offset 0, more fragments follow); it carries the transport header.
    First(u32),
    /// A later fragment (non-zero offset): no transport header, the id links it to the first.
    Later(u32),
}

/// The IP version of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

/// The IP-layer octets of a frame of `wire_len` bytes whose `frame_captured` bytes were
/// captured: the header's length, bounded by what the wire carried after the link header;
/// where the header gives none, all the wire carried after the link header.
#[inline]
pub fn ip_octets(ip: &Ip, wire_len: u32, frame_captured: usize) -> u32 {
    let link = u32::try_from(frame_captured)
        .unwrap_or(u32::MAX)
        .saturating_sub(ip.captured);
    let room = wire_len.saturating_sub(link);
    if ip.len == 0 {
        room
    } else {
        ip.len.min(room)
    }
}

/// The IP layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip {
    pub version: IpVersion,
    /// The source address as one big-endian number (`u128::from_be_bytes` of its 16
    /// bytes), so that comparing and ordering it is one operation; IPv4 addresses are
    /// IPv4-mapped (`::ffff:a.b.c.d`).
    pub src: u128,
    pub dst: u128,
    /// The upper-layer protocol after IPv6 extension headers (AH and ESP stop the walk).
    pub proto: IpProto,
    pub fragment: Fragment,
    /// The packet's IP-layer octets (RFC 7012: its headers and payload) as its header
    /// gives them: IPv4's total length, or IPv6's payload length plus its 40-byte header;
    /// 0 where the header gives no usable length (TSO captures write 0, jumbograms carry 0).
    pub len: u32,
    /// The bytes captured from the IP header on (so the link header before it is the
    /// frame's captured length less this).
    pub captured: u32,
}

/// What the decoder read of the header after IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upper {
    /// TCP or UDP whose first four header bytes were captured. `tcp_flags` is 0 for UDP,
    /// and for a TCP header cut before its flags (byte 13); `seq` is TCP's sequence number
    /// (0 for UDP, and for a header cut before it).
    Ports {
        src: u16,
        dst: u16,
        tcp_flags: u8,
        seq: u32,
    },
    /// ESP, with its security parameters index (0 when cut short).
    Esp { spi: u32 },
    /// AH whose first two bytes were captured: the protocol it protects, and the header's
    /// length in bytes (`(payload length + 2) * 4`, RFC 4302).
    Ah { next: IpProto, len: u16 },
    /// GRE of version 0 or 1 (PPTP) whose header was captured whole: the protocol type of
    /// its payload (RFC 2784), the header's length (4, plus 4 for each of checksum, key and
    /// sequence number present, RFC 2890; PPTP's version 1 adds an acknowledgment), and
    /// the flags and version word.
    Gre {
        proto: EtherType,
        len: u8,
        flags: u16,
    },
    /// Nothing read: another protocol, a header cut short, or a later fragment.
    None,
}

/// What the decoder found in one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The outermost 802.1Q/802.1ad VLAN id, 0 when untagged.
    pub vlan: u16,
    pub ip: Ip,
    pub upper: Upper,
}

impl Decoded {
    /// The TCP or UDP ports `(source, destination)`, when they were captured.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.upper {
            Upper::Ports { src, dst, .. } => Some((src, dst)),
            _ => None,
        }
    }

    /// TCP's sequence number, 0 when not read.
    #[inline]
    pub fn tcp_seq(&self) -> u32 {
        match self.upper {
            Upper::Ports { seq, .. } => seq,
            _ => 0,
        }
    }

    /// TCP flags, 0 when not read.
    #[inline]
    pub fn tcp_flags(&self) -> u8 {
        match self.upper {
            Upper::Ports { tcp_flags, .. } => tcp_flags,
            _ => 0,
        }
    }
}

/// The layer a packet ended at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Link,
    Vlan,
    Mpls,
    Pppoe,
    Ip,
}

/// What a frame that is not IP carries, in the numbering of the layer that said so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// An ethertype (or, for 802.3 frames, their length field).
    EtherType(EtherType),
    /// A BSD loopback address family.
    AddressFamily(u32),
    /// A PPP protocol number (LCP, IPCP...).
    Ppp(u16),
    /// What AH protects, when it is no packet portscope reads (IPComp's data, for one).
    IpProto(IpProto),
    /// A tunnel message that carries no packet: an L2TP control message, a VXLAN header
    /// without its I flag.
    TunnelControl,
    /// An 802.11 frame with no readable packet: management, control, null data, protected
    /// (encrypted), or data that is not LLC/SNAP.
    Wlan,
    /// An NFLOG record without a payload TLV.
    NflogNoPayload,
    /// A link layer's own protocol number: frame relay's NLPID, ARCnet's protocol id.
    LinkProtocol(u16),
}

/// Why a packet yields no IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A link type portscope does not decode (the DLT value).
    UnsupportedLink(i32),
    /// The bytes ran out inside this layer.
    Truncated(Layer),
    /// A well-formed frame carrying something other than IP (ARP, LLDP, STP...).
    NotIp(Protocol),
    /// An IP header that is not valid (wrong version, header length below minimum).
    BadIp,
}

impl Skip {
    /// Whether this is a non-IP frame rather than a frame portscope could not decode.
    pub fn is_not_ip(self) -> bool {
        matches!(self, Skip::NotIp(_))
    }

    /// Whether the link layer announced IP but the IP header is cut short or invalid: IP
    /// traffic that matches no service (tshark, too, calls these IP).
    pub fn is_broken_ip(self) -> bool {
        matches!(self, Skip::BadIp | Skip::Truncated(Layer::Ip))
    }
}

/// Decodes one frame of the given link type, and returns, beside the headers, the bytes
/// after the last header decoded: the TCP or UDP payload (what the DCE/RPC, FTP and TFTP
/// parsers read), or the packet a GRE, AH or IP-in-IP header carries (what [`inner`]
/// decodes). The payload is bounded by the IP length, so Ethernet padding is not part of it.
///
/// # Errors
/// A [`Skip`] when the frame holds no decodable IP header.
#[inline(always)]
pub fn decode(link: Link, frame: &[u8]) -> Result<(Decoded, &[u8]), Skip> {
    let mut vlan = 0;
    let packet = link::strip(link, frame, &mut vlan)?;
    ip::decode(packet, vlan)
}

/// The `N` bytes at `at`, as an array: the one length check a header needs. Constant
/// indices into the array cannot fail, and the compiler checks them.
#[inline(always)]
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> Option<&[u8; N]> {
    b.get(at..)?.first_chunk::<N>()
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(|&a| u16::from_be_bytes(a))
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(|&a| u32::from_be_bytes(a))
}

#[cfg(test)]
pub(crate) mod test_util {
    use etherparse::PacketBuilder;

    /// An Ethernet/IPv4/TCP frame from 10.0.0.1:`sport` to 10.0.0.2:`dport`.
    pub fn eth_tcp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(sport, dport, 1, 1024)
            .syn();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::eth_tcp4;
    use super::*;
    use etherparse::PacketBuilder;

    use ip::mapped;

    /// Decodes a frame, without its payload.
    fn d(link: Link, frame: &[u8]) -> Result<Decoded, Skip> {
        decode(link, frame).map(|(d, _)| d)
    }

    fn dst_port(link: Link, frame: &[u8]) -> u16 {
        d(link, frame).unwrap().ports().unwrap().1
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let frame = eth_tcp4(50000, 445, b"hello");
        let d = d(Link::Ethernet, &frame).unwrap();
        assert_eq!(d.ip.version, IpVersion::V4);
        assert_eq!(d.ip.src.to_be_bytes(), mapped([10, 0, 0, 1]));
        assert_eq!(d.ip.dst.to_be_bytes(), mapped([10, 0, 0, 2]));
        assert_eq!((d.ip.proto, d.ports()), (IpProto::TCP, Some((50000, 445))));
        assert_eq!(d.tcp_flags() & 0x02, 0x02);
        assert_eq!(d.ip.fragment, Fragment::None);
    }

    /// IP-layer octets come from the IP header: Ethernet padding and a cut capture do not
    /// change them; a total length of 0 (TSO) or one longer than the wire carried falls
    /// back to what the wire carried after the link header.
    #[test]
    fn ip_length_is_the_headers_not_the_frames() {
        let octets = |frame: &[u8], wire: usize| {
            let d = d(Link::Ethernet, frame).unwrap();
            ip_octets(&d.ip, u32::try_from(wire).unwrap(), frame.len())
        };
        let frame = eth_tcp4(50000, 445, b"");
        assert_eq!(octets(&frame, frame.len()), 40);
        let mut padded = frame.clone();
        padded.resize(60, 0);
        assert_eq!(octets(&padded, 60), 40);
        let long = eth_tcp4(50000, 445, &[7; 1000]);
        assert_eq!(octets(&long[..100], long.len()), 1040);
        let mut tso = long.clone();
        tso[16..18].copy_from_slice(&[0, 0]);
        assert_eq!(octets(&tso, tso.len()), 1040);
        // Cut to 100 bytes by the snap length, 64 KB on the wire: what the wire carried.
        assert_eq!(octets(&tso[..100], 65_000), 65_000 - 14);
        let mut lying = long.clone();
        lying[16..18].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(octets(&lying, lying.len()), 1040);
        let mut v6 = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([1; 16], [2; 16], 64)
            .udp(5353, 53)
            .write(&mut v6, &[1; 30])
            .unwrap();
        assert_eq!(octets(&v6, v6.len()), 40 + 8 + 30);
    }

    #[test]
    fn every_truncation_decodes_as_far_as_it_can() {
        let frame = eth_tcp4(50000, 445, b"");
        for n in 0..frame.len() {
            let got = d(Link::Ethernet, &frame[..n]);
            match n {
                0..=13 => assert_eq!(got, Err(Skip::Truncated(Layer::Link)), "{n}"),
                14..=33 => assert_eq!(got, Err(Skip::Truncated(Layer::Ip)), "{n}"),
                34..=37 => assert!(
                    got.is_ok_and(|d| d.upper == Upper::None && d.ip.proto == IpProto::TCP),
                    "{n}"
                ),
                _ => assert!(got.is_ok_and(|d| d.ports().unwrap().1 == 445), "{n}"),
            }
        }
    }

    #[test]
    fn vlan_qinq_and_ipv6_udp() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(
                etherparse::VlanId::try_new(100).unwrap(),
                etherparse::VlanId::try_new(200).unwrap(),
            )
            .ipv6([1; 16], [2; 16], 64)
            .udp(53000, 53);
        let mut frame = Vec::new();
        b.write(&mut frame, b"q").unwrap();
        let d = d(Link::Ethernet, &frame).unwrap();
        assert_eq!(
            (d.vlan, d.ip.version, d.ip.proto),
            (100, IpVersion::V6, IpProto::UDP)
        );
        assert_eq!(d.ports(), Some((53000, 53)));
        assert_eq!(
            (d.ip.src.to_be_bytes(), d.ip.dst.to_be_bytes()),
            ([1; 16], [2; 16])
        );
    }

    #[test]
    fn non_ip_and_unsupported_links_are_skips() {
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(
            d(Link::Ethernet, &arp),
            Err(Skip::NotIp(Protocol::EtherType(EtherType::ARP)))
        );
        assert_eq!(
            d(Link::from_dlt(147), &arp),
            Err(Skip::UnsupportedLink(147))
        );
        let mut llc = arp.clone();
        llc[12] = 0x00;
        llc[13] = 0x26;
        assert_eq!(
            d(Link::Ethernet, &llc),
            Err(Skip::NotIp(Protocol::EtherType(EtherType(0x0026))))
        );
        let frame = eth_tcp4(1, 2, b"");
        let mut bad = frame.clone();
        bad[14] = 0x35; // version 3
        assert_eq!(d(Link::Ethernet, &bad), Err(Skip::BadIp));
        bad[14] = 0x44; // IHL 4 < 5
        assert_eq!(d(Link::Ethernet, &bad), Err(Skip::BadIp));
    }

    #[test]
    fn raw_sll_sll2_null_links() {
        let frame = eth_tcp4(1234, 3389, b"x");
        let ip = &frame[14..];
        for dlt in [12, 14, 101, 228] {
            assert_eq!(dst_port(Link::from_dlt(dlt), ip), 3389, "dlt {dlt}");
        }
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        assert_eq!(dst_port(Link::from_dlt(113), &sll), 3389);
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(ip);
        assert_eq!(dst_port(Link::from_dlt(276), &sll2), 3389);
        for null in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
            let mut f = null.to_vec();
            f.extend_from_slice(ip);
            assert_eq!(dst_port(Link::from_dlt(0), &f), 3389);
        }
        let mut lo = vec![0, 0, 0, 2];
        lo.extend_from_slice(ip);
        assert_eq!(dst_port(Link::from_dlt(108), &lo), 3389);
    }

    #[test]
    fn ppp_and_cisco_hdlc() {
        let frame = eth_tcp4(1234, 445, b"x");
        let ip = &frame[14..];
        for header in [
            &[0xff, 0x03, 0x00, 0x21][..],
            &[0x00, 0x21][..],
            &[0x21][..],
        ] {
            let mut f = header.to_vec();
            f.extend_from_slice(ip);
            assert_eq!(dst_port(Link::from_dlt(9), &f), 445, "{header:?}");
        }
        // PPP carrying MPLS (0x0281), one label, then IPv4.
        let mut f = vec![0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40];
        f.extend_from_slice(ip);
        assert_eq!(dst_port(Link::from_dlt(9), &f), 445);
        // LCP is not IP.
        assert_eq!(
            d(Link::from_dlt(9), &[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]),
            Err(Skip::NotIp(Protocol::Ppp(0xc021)))
        );
        let mut hdlc = vec![0x0f, 0x00, 0x08, 0x00];
        hdlc.extend_from_slice(ip);
        assert_eq!(dst_port(Link::from_dlt(104), &hdlc), 445);
        assert_eq!(
            d(Link::from_dlt(104), &[0x8f, 0x00, 0x80, 0x35, 0]),
            Err(Skip::NotIp(Protocol::EtherType(EtherType(0x8035))))
        );
        assert_eq!(
            d(Link::from_dlt(104), &[0x8f, 0x00]),
            Err(Skip::Truncated(Layer::Link))
        );
    }

    #[test]
    fn mpls_and_pppoe() {
        let frame = eth_tcp4(1234, 135, b"x");
        let ip = &frame[14..];
        let mut mpls = frame[..12].to_vec();
        mpls.extend_from_slice(&[0x88, 0x47, 0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40]);
        mpls.extend_from_slice(ip);
        assert_eq!(dst_port(Link::Ethernet, &mpls), 135);
        let mut pppoe = frame[..12].to_vec();
        pppoe.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 0, 0x00, 0x21]);
        pppoe.extend_from_slice(ip);
        assert_eq!(dst_port(Link::Ethernet, &pppoe), 135);
    }

    #[test]
    fn ipv4_fragments_and_options() {
        let mut frame = eth_tcp4(1234, 445, b"x");
        // Mark as first fragment (MF) with id 0x1234.
        frame[18] = 0x12;
        frame[19] = 0x34;
        frame[20] = 0x20;
        let got = d(Link::Ethernet, &frame).unwrap();
        assert_eq!(
            (got.ip.fragment, got.ports().unwrap().1),
            (Fragment::First(0x1234), 445)
        );
        frame[20] = 0x00;
        frame[21] = 0x10; // offset 16 * 8
        let got = d(Link::Ethernet, &frame).unwrap();
        assert_eq!(
            (got.ip.fragment, got.upper),
            (Fragment::Later(0x1234), Upper::None)
        );

        // IHL 6: one 4-byte option (NOPs) before the TCP header.
        let base = eth_tcp4(1234, 445, b"");
        let mut opt = base[..34].to_vec();
        opt.extend_from_slice(&[1, 1, 1, 0]);
        opt.extend_from_slice(&base[34..]);
        opt[14] = 0x46;
        let total = u16::try_from(opt.len() - 14).unwrap().to_be_bytes();
        opt[16..18].copy_from_slice(&total);
        assert_eq!(d(Link::Ethernet, &opt).unwrap().ports(), Some((1234, 445)));
    }

    #[test]
    fn ipv6_extension_headers_and_fragments() {
        // IPv6, hop-by-hop (8 bytes), fragment (first), UDP.
        let mut p = vec![0x60, 0, 0, 0, 0, 24, 0, 64];
        p.extend_from_slice(&[1; 16]);
        p.extend_from_slice(&[2; 16]);
        p.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // HBH -> fragment
        p.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // first, M=1
        p.extend_from_slice(&[0x13, 0x88, 0x00, 0x89, 0, 8, 0, 0]); // UDP 5000 -> 137
        let got = d(Link::from_dlt(229), &p).unwrap();
        assert_eq!(
            (got.ip.proto, got.ports()),
            (IpProto::UDP, Some((5000, 137)))
        );
        assert_eq!(got.ip.fragment, Fragment::First(0xdead_beef));
        p[50] = 0x01; // offset 32, M=0
        p[51] = 0x00;
        let got = d(Link::from_dlt(229), &p).unwrap();
        assert_eq!(
            (got.ip.proto, got.upper, got.ip.fragment),
            (IpProto::UDP, Upper::None, Fragment::Later(0xdead_beef))
        );
    }

    #[test]
    fn esp_spi_ah_next_gre_icmp() {
        let mut base = eth_tcp4(1, 2, b"");
        base.truncate(34);
        let ip_with = |proto: u8, payload: &[u8]| {
            let mut f = base.clone();
            f[23] = proto;
            f.extend_from_slice(payload);
            f
        };
        let upper =
            |proto: u8, payload: &[u8]| d(Link::Ethernet, &ip_with(proto, payload)).unwrap().upper;
        assert_eq!(
            upper(50, &[0, 0, 0x10, 0x01, 0, 0, 0, 1]),
            Upper::Esp { spi: 0x1001 }
        );
        assert_eq!(
            upper(51, &[6, 4, 0, 0, 0, 0, 0, 9]),
            Upper::Ah {
                next: IpProto::TCP,
                len: 24
            }
        );
        let gre = |proto: u16, len: u8, flags: u16| Upper::Gre {
            proto: EtherType(proto),
            len,
            flags,
        };
        assert_eq!(upper(47, &[0, 0, 0x08, 0x00]), gre(0x0800, 4, 0));
        // Checksum and key present (RFC 2890): 12 bytes.
        assert_eq!(
            upper(47, &[0xa0, 0, 0x86, 0xdd, 0, 0, 0, 0, 0, 0, 0, 7]),
            gre(0x86dd, 12, 0xa000)
        );
        // PPTP's enhanced GRE (version 1): key, sequence and acknowledgment: 16 bytes.
        let pptp = [0x30, 0x81, 0x88, 0x0b, 0, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(upper(47, &pptp), gre(0x880b, 16, 0x3081));
        // Cut short, or an unknown version: the protocol is still GRE, its header unread.
        let cut = d(Link::Ethernet, &ip_with(47, &[0xa0, 0, 0x86, 0xdd, 0, 0])).unwrap();
        assert_eq!((cut.ip.proto, cut.upper), (IpProto::GRE, Upper::None));
        assert_eq!(upper(47, &[0, 7, 0x08, 0x00]), Upper::None);
        let icmp = d(Link::Ethernet, &ip_with(1, &[8, 0, 0, 0])).unwrap();
        assert_eq!((icmp.ip.proto, icmp.upper), (IpProto::ICMP, Upper::None));
    }

    /// Compares the decoder with etherparse on well-formed packets.
    #[test]
    fn agrees_with_etherparse() {
        use proptest::prelude::*;
        proptest!(|(sport: u16, dport: u16, udp: bool, v6: bool, len in 0usize..64)| {
            let payload = vec![0u8; len];
            let b = PacketBuilder::ethernet2([1; 6], [2; 6]);
            let b = if v6 { b.ipv6([3; 16], [4; 16], 9) } else { b.ipv4([5; 4], [6; 4], 9) };
            let mut frame = Vec::new();
            if udp { b.udp(sport, dport).write(&mut frame, &payload).unwrap(); }
            else { b.tcp(sport, dport, 0, 0).write(&mut frame, &payload).unwrap(); }
            let ours = d(Link::Ethernet, &frame).unwrap();
            let theirs = etherparse::SlicedPacket::from_ethernet(&frame).unwrap();
            let (s, d) = match theirs.transport {
                Some(etherparse::TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
                Some(etherparse::TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
                _ => unreachable!(),
            };
            prop_assert_eq!(ours.ports(), Some((s, d)));
            prop_assert_eq!(ours.ip.proto, if udp { IpProto::UDP } else { IpProto::TCP });
        });
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use proptest::prelude::*;
        let mut dlts = Link::DECODED_DLTS.to_vec();
        dlts.push(999);
        proptest!(|(dlt in prop::sample::select(dlts.clone()), bytes in prop::collection::vec(any::<u8>(), 0..200))| {
            let _ = decode(Link::from_dlt(dlt), &bytes);
        });
    }
}
