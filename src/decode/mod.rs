//! Packet decoding: from a link-layer frame to the few fields flows and classification need.
//!
//! The decoder is a small hand-written parser in the style of smoltcp's wire views: every
//! read is bounds-checked against the slice it is given, nothing is allocated, and the result
//! is a `Copy` value. It decodes as far as the bytes allow, so a frame cut short by the snapshot
//! length still yields its addresses (and its ports if the first four bytes of the transport
//! header are there). It never panics and never reads outside its input; anything it cannot
//! use is a [`Skip`], which the caller counts.
//!
//! It does not know about flows, the catalog, or where the bytes came from. etherparse builds
//! the packets of the test suite and the generator, and checks this parser in tests; the hot
//! path keeps its own reader because it needs lax port extraction from truncated transport
//! headers, fragment ids and ESP SPIs in one pass without building header structs.

mod ip;
mod link;
mod tunnel;

pub use link::Link;
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

/// What the decoder found in one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The outermost 802.1Q/802.1ad VLAN id, 0 when untagged.
    pub vlan: u16,
    /// 4 or 6.
    pub ip_version: u8,
    /// Source address; IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The upper-layer protocol after IPv6 extension headers (AH and ESP stop the walk).
    pub proto: u8,
    /// Whether `src_port`/`dst_port` were read (TCP and UDP with at least 4 header bytes).
    pub has_ports: bool,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags, when the TCP header reached byte 14; 0 otherwise.
    pub tcp_flags: u8,
    /// The ESP security parameters index, 0 for other protocols.
    pub spi: u32,
    /// For AH, the protocol it protects; 0 otherwise.
    pub ah_next: u8,
    /// For AH, the header's length in bytes (`(payload length + 2) * 4`, RFC 4302), when the
    /// length byte was captured; 0 otherwise.
    pub ah_len: u16,
    /// For GRE, the protocol type of its payload (an ethertype, RFC 2784), when the GRE
    /// header was captured whole and is version 0 or 1 (PPTP); 0 otherwise.
    pub gre_proto: u16,
    /// For GRE, the header's length in bytes (4, plus 4 for each of checksum, key and
    /// sequence number present, RFC 2890; PPTP's version 1 adds an acknowledgment).
    pub gre_len: u8,
    /// For GRE, the flags and version word (bit 0x1000: a sequence number is present).
    pub gre_flags: u16,
    pub fragment: Fragment,
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

/// Why a packet yields no IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A link type portscope does not decode (the DLT value).
    UnsupportedLink(i32),
    /// The bytes ran out inside this layer.
    Truncated(Layer),
    /// A well-formed frame carrying something other than IP (ARP, LLDP, STP...), with its
    /// ethertype (or, for 802.3 frames, their length field).
    NotIp(u16),
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

/// Decodes one frame of the given link type.
///
/// # Errors
/// A [`Skip`] when the frame holds no decodable IP header.
#[inline]
pub fn decode(link: Link, frame: &[u8]) -> Result<Decoded, Skip> {
    decode_payload(link, frame).map(|(d, _)| d)
}

/// Decodes one frame and returns, beside the headers, the bytes after the last header
/// decoded: the TCP or UDP payload (what the DCE/RPC, FTP and TFTP parsers read), or the
/// packet a GRE, AH or IP-in-IP header carries (what [`inner`] decodes). The payload is
/// bounded by the IP length, so Ethernet padding is not part of it.
///
/// # Errors
/// A [`Skip`] when the frame holds no decodable IP header.
#[inline]
pub fn decode_payload(link: Link, frame: &[u8]) -> Result<(Decoded, &[u8]), Skip> {
    let mut out = Decoded::default();
    let payload = decode_into(link, frame, &mut out)?;
    Ok((out, payload))
}

/// [`decode_payload`] into a caller's `Decoded` (which must be `Decoded::default()`), so
/// the hot path does not move the struct around.
///
/// # Errors
/// A [`Skip`] when the frame holds no decodable IP header.
#[inline(always)]
pub fn decode_into<'a>(link: Link, frame: &'a [u8], out: &mut Decoded) -> Result<&'a [u8], Skip> {
    let ip = link::strip(link, frame, out)?;
    ip::decode(ip, out)
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    match b.get(at..at + 4) {
        Some(&[a, x, y, z]) => Some(u32::from_be_bytes([a, x, y, z])),
        _ => None,
    }
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

    fn mapped(v4: [u8; 4]) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&v4);
        a
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let frame = eth_tcp4(50000, 445, b"hello");
        let d = decode(Link::Ethernet, &frame).unwrap();
        assert_eq!(d.ip_version, 4);
        assert_eq!(d.src, mapped([10, 0, 0, 1]));
        assert_eq!(d.dst, mapped([10, 0, 0, 2]));
        assert_eq!(
            (d.proto, d.has_ports, d.src_port, d.dst_port),
            (6, true, 50000, 445)
        );
        assert_eq!(d.tcp_flags & 0x02, 0x02);
        assert_eq!(d.fragment, Fragment::None);
    }

    #[test]
    fn every_truncation_decodes_as_far_as_it_can() {
        let frame = eth_tcp4(50000, 445, b"");
        for n in 0..frame.len() {
            let got = decode(Link::Ethernet, &frame[..n]);
            match n {
                0..=13 => assert_eq!(got, Err(Skip::Truncated(Layer::Link)), "{n}"),
                14..=33 => assert_eq!(got, Err(Skip::Truncated(Layer::Ip)), "{n}"),
                34..=37 => assert!(got.is_ok_and(|d| !d.has_ports && d.proto == 6), "{n}"),
                _ => assert!(got.is_ok_and(|d| d.has_ports && d.dst_port == 445), "{n}"),
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
        let d = decode(Link::Ethernet, &frame).unwrap();
        assert_eq!((d.vlan, d.ip_version, d.proto), (100, 6, 17));
        assert_eq!((d.src_port, d.dst_port), (53000, 53));
        assert_eq!((d.src, d.dst), ([1; 16], [2; 16]));
    }

    #[test]
    fn non_ip_and_unsupported_links_are_skips() {
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(decode(Link::Ethernet, &arp), Err(Skip::NotIp(0x0806)));
        assert_eq!(
            decode(Link::from_dlt(147), &arp),
            Err(Skip::UnsupportedLink(147))
        );
        let mut llc = arp.clone();
        llc[12] = 0x00;
        llc[13] = 0x26;
        assert_eq!(decode(Link::Ethernet, &llc), Err(Skip::NotIp(0x0026)));
        let frame = eth_tcp4(1, 2, b"");
        let mut bad = frame.clone();
        bad[14] = 0x35; // version 3
        assert_eq!(decode(Link::Ethernet, &bad), Err(Skip::BadIp));
        bad[14] = 0x44; // IHL 4 < 5
        assert_eq!(decode(Link::Ethernet, &bad), Err(Skip::BadIp));
    }

    #[test]
    fn raw_sll_sll2_null_links() {
        let frame = eth_tcp4(1234, 3389, b"x");
        let ip = &frame[14..];
        for dlt in [12, 14, 101, 228] {
            let d = decode(Link::from_dlt(dlt), ip).unwrap();
            assert_eq!(d.dst_port, 3389, "dlt {dlt}");
        }
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        assert_eq!(decode(Link::from_dlt(113), &sll).unwrap().dst_port, 3389);
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(ip);
        assert_eq!(decode(Link::from_dlt(276), &sll2).unwrap().dst_port, 3389);
        for null in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
            let mut f = null.to_vec();
            f.extend_from_slice(ip);
            assert_eq!(decode(Link::from_dlt(0), &f).unwrap().dst_port, 3389);
        }
        let mut lo = vec![0, 0, 0, 2];
        lo.extend_from_slice(ip);
        assert_eq!(decode(Link::from_dlt(108), &lo).unwrap().dst_port, 3389);
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
            assert_eq!(
                decode(Link::from_dlt(9), &f).unwrap().dst_port,
                445,
                "{header:?}"
            );
        }
        // PPP carrying MPLS (0x0281), one label, then IPv4.
        let mut f = vec![0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40];
        f.extend_from_slice(ip);
        assert_eq!(decode(Link::from_dlt(9), &f).unwrap().dst_port, 445);
        // LCP is not IP.
        assert_eq!(
            decode(Link::from_dlt(9), &[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]),
            Err(Skip::NotIp(0xc021))
        );
        let mut hdlc = vec![0x0f, 0x00, 0x08, 0x00];
        hdlc.extend_from_slice(ip);
        assert_eq!(decode(Link::from_dlt(104), &hdlc).unwrap().dst_port, 445);
        assert_eq!(
            decode(Link::from_dlt(104), &[0x8f, 0x00, 0x80, 0x35, 0]),
            Err(Skip::NotIp(0x8035))
        );
        assert_eq!(
            decode(Link::from_dlt(104), &[0x8f, 0x00]),
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
        assert_eq!(decode(Link::Ethernet, &mpls).unwrap().dst_port, 135);
        let mut pppoe = frame[..12].to_vec();
        pppoe.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 0, 0x00, 0x21]);
        pppoe.extend_from_slice(ip);
        assert_eq!(decode(Link::Ethernet, &pppoe).unwrap().dst_port, 135);
    }

    #[test]
    fn ipv4_fragments_and_options() {
        let mut frame = eth_tcp4(1234, 445, b"x");
        // Mark as first fragment (MF) with id 0x1234.
        frame[18] = 0x12;
        frame[19] = 0x34;
        frame[20] = 0x20;
        let d = decode(Link::Ethernet, &frame).unwrap();
        assert_eq!((d.fragment, d.dst_port), (Fragment::First(0x1234), 445));
        frame[20] = 0x00;
        frame[21] = 0x10; // offset 16 * 8
        let d = decode(Link::Ethernet, &frame).unwrap();
        assert_eq!((d.fragment, d.has_ports), (Fragment::Later(0x1234), false));

        // IHL 6: one 4-byte option (NOPs) before the TCP header.
        let base = eth_tcp4(1234, 445, b"");
        let mut opt = base[..34].to_vec();
        opt.extend_from_slice(&[1, 1, 1, 0]);
        opt.extend_from_slice(&base[34..]);
        opt[14] = 0x46;
        let total = u16::try_from(opt.len() - 14).unwrap().to_be_bytes();
        opt[16..18].copy_from_slice(&total);
        let d = decode(Link::Ethernet, &opt).unwrap();
        assert_eq!((d.src_port, d.dst_port), (1234, 445));
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
        let d = decode(Link::from_dlt(229), &p).unwrap();
        assert_eq!((d.proto, d.src_port, d.dst_port), (17, 5000, 137));
        assert_eq!(d.fragment, Fragment::First(0xdead_beef));
        p[50] = 0x01; // offset 32, M=0
        p[51] = 0x00;
        let d = decode(Link::from_dlt(229), &p).unwrap();
        assert_eq!(
            (d.proto, d.has_ports, d.fragment),
            (17, false, Fragment::Later(0xdead_beef))
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
        let d = decode(
            Link::Ethernet,
            &ip_with(50, &[0, 0, 0x10, 0x01, 0, 0, 0, 1]),
        )
        .unwrap();
        assert_eq!((d.proto, d.spi, d.has_ports), (50, 0x1001, false));
        let d = decode(Link::Ethernet, &ip_with(51, &[6, 4, 0, 0, 0, 0, 0, 9])).unwrap();
        assert_eq!((d.proto, d.ah_next, d.ah_len), (51, 6, 24));
        let d = decode(Link::Ethernet, &ip_with(47, &[0, 0, 0x08, 0x00])).unwrap();
        assert_eq!((d.proto, d.gre_proto, d.gre_len), (47, 0x0800, 4));
        // Checksum and key present (RFC 2890): 12 bytes.
        let d = decode(
            Link::Ethernet,
            &ip_with(47, &[0xa0, 0, 0x86, 0xdd, 0, 0, 0, 0, 0, 0, 0, 7]),
        )
        .unwrap();
        assert_eq!((d.gre_proto, d.gre_len), (0x86dd, 12));
        // PPTP's enhanced GRE (version 1): key, sequence and acknowledgment: 16 bytes.
        let pptp = [0x30, 0x81, 0x88, 0x0b, 0, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        let d = decode(Link::Ethernet, &ip_with(47, &pptp)).unwrap();
        assert_eq!((d.gre_proto, d.gre_len), (0x880b, 16));
        // Cut short, or an unknown version: the protocol is still GRE, its header unread.
        let d = decode(Link::Ethernet, &ip_with(47, &[0xa0, 0, 0x86, 0xdd, 0, 0])).unwrap();
        assert_eq!((d.proto, d.gre_proto, d.gre_len), (47, 0, 0));
        let d = decode(Link::Ethernet, &ip_with(47, &[0, 7, 0x08, 0x00])).unwrap();
        assert_eq!((d.proto, d.gre_proto), (47, 0));
        let d = decode(Link::Ethernet, &ip_with(1, &[8, 0, 0, 0])).unwrap();
        assert_eq!((d.proto, d.has_ports), (1, false));
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
            let ours = decode(Link::Ethernet, &frame).unwrap();
            let theirs = etherparse::SlicedPacket::from_ethernet(&frame).unwrap();
            let (s, d) = match theirs.transport {
                Some(etherparse::TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
                Some(etherparse::TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
                _ => unreachable!(),
            };
            prop_assert_eq!((ours.src_port, ours.dst_port), (s, d));
            prop_assert_eq!(ours.proto, if udp { 17 } else { 6 });
        });
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(dlt in prop::sample::select(vec![0, 1, 9, 12, 14, 101, 104, 108, 113, 228, 229, 276, 999]), bytes in prop::collection::vec(any::<u8>(), 0..200))| {
            let _ = decode(Link::from_dlt(dlt), &bytes);
        });
    }
}
