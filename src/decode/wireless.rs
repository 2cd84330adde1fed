//! Wireless and logging link layers: IEEE 802.11 data frames (IEEE 802.11-2020 9.2-9.3),
//! behind a radiotap (<https://www.radiotap.org>) or PPI header, and Linux NFLOG records
//! (<https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html>).
//!
//! Only what finds the packet is read: the frame control, the header's length from its
//! flags, and the LLC/SNAP header after it. Management and control frames, null data
//! frames and protected (encrypted) frames carry no packet portscope can read: they are
//! not IP.

use super::link::{carried, ethertype_payload, Link};
use super::{array, EtherType, Layer, Protocol, Skip};

/// Byte offsets and lengths of the fields read.
mod field {
    /// 802.11: frame control (2), duration (2), three addresses (18), sequence control (2).
    pub const WLAN_LEN: usize = 24;
    pub const WLAN_ADDR4_LEN: usize = 6;
    pub const WLAN_QOS_LEN: usize = 2;
    pub const WLAN_HT_LEN: usize = 4;
    /// LLC (DSAP, SSAP, control) and SNAP (OUI, ethertype).
    pub const SNAP_LEN: usize = 8;
    pub const SNAP_TYPE: usize = 6;
    /// Radiotap and PPI: version, pad or flags, then the header's length (little-endian).
    pub const RADIO_LEN: usize = 2;
    /// PPI: the link type of what follows (little-endian).
    pub const PPI_DLT: usize = 4;
    /// NFLOG: family, version, resource id; then TLVs of length (host order) and type.
    pub const NFLOG_LEN: usize = 4;
    pub const TLV_LEN: usize = 4;
}

/// Frame control, first byte: the frame type (bits 2-3) and subtype (bits 4-7).
const TYPE_MASK: u8 = 0x0c;
const TYPE_DATA: u8 = 0x08;
/// Data subtypes with bit 2 set carry no frame body (null data, QoS null).
const SUBTYPE_NO_DATA: u8 = 0x40;
/// Data subtypes with bit 3 set are QoS data: a 2-byte QoS control field follows.
const SUBTYPE_QOS: u8 = 0x80;
/// Frame control, second byte.
const TO_DS: u8 = 0x01;
const FROM_DS: u8 = 0x02;
const PROTECTED: u8 = 0x40;
/// In QoS frames, an HT control field follows.
const ORDER: u8 = 0x80;
/// LLC SNAP: DSAP and SSAP 0xaa, unnumbered information.
const SNAP: [u8; 3] = [0xaa, 0xaa, 0x03];
/// NFLOG's TLV type for the packet itself (NFULA_PAYLOAD).
const NFULA_PAYLOAD: u16 = 9;
/// TLVs read at most in one NFLOG record.
const MAX_TLVS: usize = 32;

/// An 802.11 frame: a data frame's body, through LLC/SNAP, to the packet it carries.
pub(super) fn ieee80211<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let fc = array::<2>(frame, 0).ok_or(truncated)?;
    let (fc0, fc1) = (fc[0], fc[1]);
    if fc0 & 0x03 != 0 || fc0 & TYPE_MASK != TYPE_DATA || fc0 & SUBTYPE_NO_DATA != 0 {
        return Err(Skip::NotIp(Protocol::Wlan));
    }
    if fc1 & PROTECTED != 0 {
        return Err(Skip::NotIp(Protocol::Wlan));
    }
    let mut len = field::WLAN_LEN;
    if fc1 & (TO_DS | FROM_DS) == TO_DS | FROM_DS {
        len += field::WLAN_ADDR4_LEN;
    }
    if fc0 & SUBTYPE_QOS != 0 {
        len += field::WLAN_QOS_LEN;
        if fc1 & ORDER != 0 {
            len += field::WLAN_HT_LEN;
        }
    }
    let body = frame.get(len..).ok_or(truncated)?;
    let llc = array::<{ field::SNAP_LEN }>(body, 0).ok_or(truncated)?;
    if llc[..3] != SNAP {
        return Err(Skip::NotIp(Protocol::Wlan));
    }
    let ethertype = u16::from_be_bytes([llc[field::SNAP_TYPE], llc[field::SNAP_TYPE + 1]]);
    ethertype_payload(EtherType(ethertype), &body[field::SNAP_LEN..], vlan)
}

/// The length a radiotap or PPI header gives itself, checked against the frame.
fn radio_len(frame: &[u8]) -> Result<usize, Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let h = array::<4>(frame, 0).ok_or(truncated)?;
    if h[0] != 0 {
        return Err(Skip::Truncated(Layer::Link));
    }
    let len = usize::from(u16::from_le_bytes([
        h[field::RADIO_LEN],
        h[field::RADIO_LEN + 1],
    ]));
    if len < 4 || len > frame.len() {
        return Err(truncated);
    }
    Ok(len)
}

/// Radiotap: skip the radio header to the 802.11 frame.
pub(super) fn radiotap<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let len = radio_len(frame)?;
    ieee80211(&frame[len..], vlan)
}

/// PPI: skip the header to the frame of the link type it names.
pub(super) fn ppi<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let len = radio_len(frame)?;
    let dlt = array::<4>(frame, field::PPI_DLT).ok_or(Skip::Truncated(Layer::Link))?;
    carried(Link::Ppi, i32::from_le_bytes(*dlt), &frame[len..], vlan)
}

/// NFLOG: the IP packet in the payload TLV. TLV lengths and types are in the capturing
/// host's byte order: the first TLV (the packet header, 8 bytes) says which, as Wireshark
/// decides too. The payload may be cut by the snapshot length.
pub(super) fn nflog(frame: &[u8]) -> Result<&[u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    let mut rest = frame.get(field::NFLOG_LEN..).ok_or(truncated)?;
    let first = array::<2>(rest, 0).ok_or(truncated)?;
    let le_len = usize::from(u16::from_le_bytes(*first));
    let le = (field::TLV_LEN..=rest.len()).contains(&le_len);
    let word = |b: [u8; 2]| {
        if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    for _ in 0..MAX_TLVS {
        let Some(tlv) = array::<{ field::TLV_LEN }>(rest, 0) else {
            break;
        };
        let len = usize::from(word([tlv[0], tlv[1]]));
        // The type's top bits are flags (NLA_F_NESTED, NLA_F_NET_BYTEORDER).
        let kind = word([tlv[2], tlv[3]]) & 0x3fff;
        if len < field::TLV_LEN {
            return Err(truncated);
        }
        if kind == NFULA_PAYLOAD {
            return Ok(&rest[field::TLV_LEN..len.min(rest.len())]);
        }
        // TLVs are padded to 4 bytes.
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    Err(Skip::NotIp(Protocol::NflogNoPayload))
}

#[cfg(test)]
mod tests {
    use super::super::{decode, test_util::eth_tcp4, IpProto};
    use super::*;

    fn ip() -> Vec<u8> {
        eth_tcp4(50000, 445, b"smb")[14..].to_vec()
    }

    /// An 802.11 data frame (QoS when `qos`), from the station to the AP, carrying `ip`.
    fn wlan(qos: bool, fc1: u8, ip: &[u8]) -> Vec<u8> {
        let mut f = vec![if qos { 0x88 } else { 0x08 }, fc1, 0, 0];
        f.extend_from_slice(&[0x11; 18]); // addresses
        f.extend_from_slice(&[0, 0]); // sequence
        if fc1 & 0x03 == 0x03 {
            f.extend_from_slice(&[0x22; 6]);
        }
        if qos {
            f.extend_from_slice(&[0, 0]);
            if fc1 & ORDER != 0 {
                f.extend_from_slice(&[0; 4]);
            }
        }
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        f.extend_from_slice(ip);
        f
    }

    fn port(link: Link, frame: &[u8]) -> Result<u16, Skip> {
        decode(link, frame).map(|(d, _)| d.ports().map_or(0, |p| p.1))
    }

    #[test]
    fn data_frames_plain_qos_four_address_and_ht() {
        let ip = ip();
        for (qos, fc1) in [(false, 0x01), (true, 0x01), (true, 0x03), (true, 0x81)] {
            assert_eq!(
                port(Link::Ieee80211, &wlan(qos, fc1, &ip)),
                Ok(445),
                "{qos} {fc1:#x}"
            );
        }
    }

    #[test]
    fn what_is_not_a_readable_data_frame_is_not_ip() {
        let ip = ip();
        let not_ip = Err(Skip::NotIp(Protocol::Wlan));
        let mut beacon = wlan(false, 0, &ip);
        beacon[0] = 0x80;
        assert_eq!(port(Link::Ieee80211, &beacon), not_ip);
        let mut null = wlan(false, 0x01, &ip);
        null[0] = 0x48;
        assert_eq!(port(Link::Ieee80211, &null), not_ip);
        assert_eq!(
            port(Link::Ieee80211, &wlan(true, 0x41, &ip)),
            not_ip,
            "protected"
        );
        let mut no_snap = wlan(false, 0x01, &ip);
        no_snap[24] = 0x42;
        assert_eq!(port(Link::Ieee80211, &no_snap), not_ip);
        let frame = wlan(true, 0x01, &ip);
        for n in 0..34 {
            assert_eq!(
                port(Link::Ieee80211, &frame[..n]),
                Err(Skip::Truncated(Layer::Link)),
                "cut at {n}"
            );
        }
    }

    #[test]
    fn radiotap_and_ppi_headers() {
        let inner = wlan(true, 0x01, &ip());
        let mut rt = vec![0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        rt.extend_from_slice(&inner);
        assert_eq!(port(Link::Radiotap, &rt), Ok(445));
        let mut ppi = vec![0, 0, 8, 0, 105, 0, 0, 0];
        ppi.extend_from_slice(&inner);
        assert_eq!(port(Link::Ppi, &ppi), Ok(445));
        let mut ppi_eth = vec![0, 0, 8, 0, 1, 0, 0, 0];
        ppi_eth.extend_from_slice(&eth_tcp4(1, 3389, b""));
        assert_eq!(port(Link::Ppi, &ppi_eth), Ok(3389));
        // A length past the frame.
        rt[2] = 200;
        assert_eq!(port(Link::Radiotap, &rt), Err(Skip::Truncated(Layer::Link)));
    }

    #[test]
    fn nflog_payload_tlv_in_either_byte_order() {
        let ip = ip();
        let tlv = |le: bool, kind: u16, body: &[u8]| {
            let len = u16::try_from(body.len() + 4).unwrap();
            let mut t = if le {
                [len.to_le_bytes(), kind.to_le_bytes()].concat()
            } else {
                [len.to_be_bytes(), kind.to_be_bytes()].concat()
            };
            t.extend_from_slice(body);
            while t.len() % 4 != 0 {
                t.push(0);
            }
            t
        };
        for le in [true, false] {
            let mut f = vec![2, 0, 0, 1];
            f.extend_from_slice(&tlv(le, 1, &[0, 0x08, 0x00, 0]));
            f.extend_from_slice(&tlv(le, 10, b"prefix\0"));
            f.extend_from_slice(&tlv(le, NFULA_PAYLOAD, &ip));
            let (d, _) = decode(Link::Nflog, &f).unwrap();
            assert_eq!(
                (d.ip.proto, d.ports()),
                (IpProto::TCP, Some((50000, 445))),
                "{le}"
            );
        }
        let mut none = vec![2, 0, 0, 1];
        none.extend_from_slice(&tlv(true, 1, &[0, 0x08, 0x00, 0]));
        assert_eq!(
            decode(Link::Nflog, &none).map(|_| ()),
            Err(Skip::NotIp(Protocol::NflogNoPayload))
        );
    }
}
