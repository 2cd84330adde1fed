//! Link types an analyst meets now and then: frame relay (RFC 2427, and Cisco's ethertype
//! form), Linux ARCnet (RFC 1201 and RFC 1051), Solaris ipnet, IP over InfiniBand
//! (RFC 4391), Apple's PKTAP and FDDI, each as <https://www.tcpdump.org/linktypes.html> and
//! tshark read them.

use super::link::{carried, ethertype_payload, Link};
use super::{array, be16, EtherType, Layer, Protocol, Skip};

/// Byte offsets and lengths of the fields read.
mod field {
    /// Frame relay: a two-byte Q.922 address, then the control byte (0x03, unnumbered
    /// information) and an NLPID, or an ethertype.
    pub const FR_ADDRESS_LEN: usize = 2;
    /// ARCnet (Linux): source, destination, a two-byte offset, then the protocol id.
    pub const ARCNET_PROTOCOL: usize = 4;
    /// RFC 1201 adds a split flag and a sequence number; an exception packet (split flag
    /// 0xff) repeats the header four bytes on.
    pub const ARCNET_1201_LEN: usize = 8;
    pub const ARCNET_EXCEPTION_LEN: usize = 12;
    pub const ARCNET_1051_LEN: usize = 5;
    /// ipnet: version, family, hook type, packet length, interface and zone ids.
    pub const IPNET_FAMILY: usize = 1;
    pub const IPNET_LEN: usize = 24;
    /// IPoIB: source and destination hardware addresses (20 bytes each), then the type.
    pub const IPOIB_TYPE: usize = 40;
    pub const IPOIB_LEN: usize = 44;
    /// PKTAP: the header's length and the link type after it, in the writer's byte order.
    pub const PKTAP_DLT: usize = 4;
    /// FDDI: frame control, destination and source addresses (6 each), then LLC/SNAP:
    /// DSAP, SSAP, control, an OUI and an ethertype.
    pub const FDDI_LLC: usize = 13;
    pub const FDDI_SNAP_LEN: usize = 8;
}

/// FDDI frame control of asynchronous LLC frames: 0101 0PPP (the low bits a priority).
const FDDI_LLC_MASK: u8 = 0xf8;
const FDDI_LLC_FC: u8 = 0x50;
const LLC_SNAP: [u8; 3] = [0xaa, 0xaa, 0x03];

/// FDDI (DLT 10): an LLC frame's SNAP header to the packet it carries. Station management
/// and MAC frames, and LLC that is not SNAP, are not IP (their frame control byte names
/// them). The addresses, which FDDI sends bit-reversed, are not read.
pub(super) fn fddi<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let fc = *frame.first().ok_or(truncated)?;
    if fc & FDDI_LLC_MASK != FDDI_LLC_FC {
        return Err(Skip::NotIp(Protocol::LinkProtocol(u16::from(fc))));
    }
    let llc = array::<{ field::FDDI_SNAP_LEN }>(frame, field::FDDI_LLC).ok_or(truncated)?;
    if llc[..3] != LLC_SNAP {
        return Err(Skip::NotIp(Protocol::LinkProtocol(u16::from(fc))));
    }
    let ethertype = EtherType(u16::from_be_bytes([llc[6], llc[7]]));
    ethertype_payload(
        ethertype,
        &frame[field::FDDI_LLC + field::FDDI_SNAP_LEN..],
        vlan,
    )
}

const FR_UI: u8 = 0x03;
/// NLPIDs (ISO/IEC TR 9577): padding, SNAP, IPv4, IPv6.
const NLPID_PAD: u8 = 0x00;
const NLPID_SNAP: u8 = 0x80;
const NLPID_IPV4: u8 = 0xcc;
const NLPID_IPV6: u8 = 0x8e;
/// ARCnet protocol ids.
const ARC_IP_RFC1201: u8 = 0xd4;
const ARC_ARP_RFC1201: u8 = 0xd5;
const ARC_IP_RFC1051: u8 = 0xf0;
const ARC_ARP_RFC1051: u8 = 0xf1;
const ARC_SPLIT_EXCEPTION: u8 = 0xff;

/// Frame relay: the address, then RFC 2427's UI control and NLPID, or an ethertype.
pub(super) fn frame_relay<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let rest = frame.get(field::FR_ADDRESS_LEN..).ok_or(truncated)?;
    match rest {
        [FR_UI, NLPID_PAD, nlpid, body @ ..] | [FR_UI, nlpid, body @ ..] => match *nlpid {
            NLPID_IPV4 | NLPID_IPV6 => Ok(body),
            // SNAP: an OUI, then an ethertype.
            NLPID_SNAP => {
                let ethertype = be16(body, 3).ok_or(truncated)?;
                ethertype_payload(EtherType(ethertype), body.get(5..).ok_or(truncated)?, vlan)
            }
            other => Err(Skip::NotIp(Protocol::LinkProtocol(u16::from(other)))),
        },
        _ => {
            let ethertype = be16(rest, 0).ok_or(truncated)?;
            ethertype_payload(EtherType(ethertype), &rest[2..], vlan)
        }
    }
}

/// Linux ARCnet: the packet after an RFC 1201 or RFC 1051 header.
pub(super) fn arcnet(frame: &[u8]) -> Result<&[u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let h = array::<{ field::ARCNET_1051_LEN }>(frame, 0).ok_or(truncated)?;
    let header_len = match h[field::ARCNET_PROTOCOL] {
        ARC_IP_RFC1201 => match frame.get(field::ARCNET_PROTOCOL + 1) {
            Some(&ARC_SPLIT_EXCEPTION) => field::ARCNET_EXCEPTION_LEN,
            Some(_) => field::ARCNET_1201_LEN,
            None => return Err(truncated),
        },
        ARC_IP_RFC1051 => field::ARCNET_1051_LEN,
        ARC_ARP_RFC1201 | ARC_ARP_RFC1051 => {
            return Err(Skip::NotIp(Protocol::EtherType(EtherType::ARP)))
        }
        other => return Err(Skip::NotIp(Protocol::LinkProtocol(u16::from(other)))),
    };
    frame.get(header_len..).ok_or(truncated)
}

/// Solaris ipnet: the packet after the 24-byte header, if its family is IPv4 or IPv6.
pub(super) fn ipnet(frame: &[u8]) -> Result<&[u8], Skip> {
    let h = array::<{ field::IPNET_LEN }>(frame, 0).ok_or(Skip::Truncated(Layer::Link))?;
    match h[field::IPNET_FAMILY] {
        // AF_INET and Solaris's AF_INET6.
        2 | 26 => Ok(&frame[field::IPNET_LEN..]),
        other => Err(Skip::NotIp(Protocol::AddressFamily(u32::from(other)))),
    }
}

/// IP over InfiniBand: the type after the addresses, then the packet.
pub(super) fn ipoib<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let ethertype = be16(frame, field::IPOIB_TYPE).ok_or(truncated)?;
    let rest = frame.get(field::IPOIB_LEN..).ok_or(truncated)?;
    ethertype_payload(EtherType(ethertype), rest, vlan)
}

/// PKTAP: skip the header to the frame of the link type it names (little-endian, as the
/// macOS machines that write it are); [`carried`] says which it reads.
pub(super) fn pktap<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let h = array::<8>(frame, 0).ok_or(truncated)?;
    let len = usize::try_from(u32::from_le_bytes([h[0], h[1], h[2], h[3]])).unwrap_or(usize::MAX);
    let dlt = i32::from_le_bytes([
        h[field::PKTAP_DLT],
        h[field::PKTAP_DLT + 1],
        h[field::PKTAP_DLT + 2],
        h[field::PKTAP_DLT + 3],
    ]);
    let inner = frame.get(len..).filter(|_| len >= 8).ok_or(truncated)?;
    carried(Link::Pktap, dlt, inner, vlan)
}

#[cfg(test)]
mod tests {
    use super::super::{decode, test_util::eth_tcp4};
    use super::*;

    fn port(link: Link, frame: &[u8]) -> Result<u16, Skip> {
        decode(link, frame).map(|(d, _)| d.ports().map_or(0, |p| p.1))
    }

    fn with(header: &[u8], ip: &[u8]) -> Vec<u8> {
        [header, ip].concat()
    }

    #[test]
    fn frame_relay_nlpid_snap_and_cisco() {
        let eth = eth_tcp4(50000, 445, b"x");
        let ip = &eth[14..];
        assert_eq!(
            port(Link::FrameRelay, &with(&[0x18, 0x61, 0x03, 0xcc], ip)),
            Ok(445)
        );
        assert_eq!(
            port(Link::FrameRelay, &with(&[0x18, 0x61, 0x03, 0x00, 0xcc], ip)),
            Ok(445)
        );
        assert_eq!(
            port(
                Link::FrameRelay,
                &with(&[0x18, 0x61, 0x03, 0x80, 0, 0, 0, 0x08, 0x00], ip)
            ),
            Ok(445)
        );
        assert_eq!(
            port(Link::FrameRelay, &with(&[0x18, 0x61, 0x08, 0x00], ip)),
            Ok(445)
        );
        assert_eq!(
            port(Link::FrameRelay, &[0x18, 0x61, 0x03, 0x08, 0, 0]),
            Err(Skip::NotIp(Protocol::LinkProtocol(0x08)))
        );
        assert_eq!(
            port(Link::FrameRelay, &[0x18]),
            Err(Skip::Truncated(Layer::Link))
        );
    }

    #[test]
    fn fddi_llc_snap() {
        let eth = eth_tcp4(50000, 445, b"x");
        let ip = &eth[14..];
        let mut header = vec![0x50];
        header.extend_from_slice(&[0x11; 12]);
        header.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        assert_eq!(port(Link::Fddi, &with(&header, ip)), Ok(445));
        header[0] = 0x41; // station management
        assert_eq!(
            port(Link::Fddi, &with(&header, ip)),
            Err(Skip::NotIp(Protocol::LinkProtocol(0x41)))
        );
        assert_eq!(
            port(Link::Fddi, &[0x50, 1, 2]),
            Err(Skip::Truncated(Layer::Link))
        );
    }

    #[test]
    fn arcnet_ipnet_ipoib_pktap() {
        let eth = eth_tcp4(50000, 445, b"x");
        let ip = &eth[14..];
        assert_eq!(
            port(Link::Arcnet, &with(&[1, 2, 0, 0, 0xd4, 0, 0, 1], ip)),
            Ok(445)
        );
        assert_eq!(
            port(
                Link::Arcnet,
                &with(&[1, 2, 0, 0, 0xd4, 0xff, 0, 1, 0, 0, 0, 0], ip)
            ),
            Ok(445)
        );
        assert_eq!(port(Link::Arcnet, &with(&[1, 2, 0, 0, 0xf0], ip)), Ok(445));
        assert_eq!(
            port(Link::Arcnet, &[1, 2, 0, 0, 0xd5, 0, 0, 1, 0, 7]),
            Err(Skip::NotIp(Protocol::EtherType(EtherType::ARP)))
        );
        let mut ipnet = vec![1, 2, 0, 0];
        ipnet.resize(24, 0);
        assert_eq!(port(Link::Ipnet, &with(&ipnet, ip)), Ok(445));
        ipnet[1] = 7;
        assert_eq!(
            port(Link::Ipnet, &with(&ipnet, ip)),
            Err(Skip::NotIp(Protocol::AddressFamily(7)))
        );
        let mut ipoib = vec![0; 40];
        ipoib.extend_from_slice(&[0x08, 0x00, 0, 0]);
        assert_eq!(port(Link::Ipoib, &with(&ipoib, ip)), Ok(445));
        let mut pktap = vec![12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        pktap.extend_from_slice(&eth);
        assert_eq!(port(Link::Pktap, &pktap), Ok(445));
        pktap[0] = 200;
        assert_eq!(port(Link::Pktap, &pktap), Err(Skip::Truncated(Layer::Link)));
        for link in [
            Link::FrameRelay,
            Link::Arcnet,
            Link::Ipnet,
            Link::Ipoib,
            Link::Pktap,
            Link::Fddi,
        ] {
            assert_eq!(
                port(link, &[]),
                Err(Skip::Truncated(Layer::Link)),
                "{link:?}"
            );
        }
    }
}
