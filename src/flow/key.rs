//! The canonical, bidirectional flow key.

use crate::decode::{Decoded, IpProto, Upper};

const _: () = assert!(super::SHARDS == 64, "shard_of takes six bits");

/// A bidirectional flow: IP protocol, the two endpoints in canonical order, the VLAN, and for
/// ESP the SPI. TCP and UDP endpoints include ports; GRE, AH, ICMP and other protocols are
/// keyed by address pair. A→B and B→A give the same key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The lower endpoint (address, then port).
    pub a: [u8; 16],
    pub b: [u8; 16],
    pub a_port: u16,
    pub b_port: u16,
    pub proto: IpProto,
    pub vlan: u16,
    /// The ESP security parameters index, 0 for other protocols.
    pub spi: u32,
}

impl std::hash::Hash for Key {
    /// Five machine words instead of the derived hash's nine writes (and length prefixes),
    /// and always inlined: this runs for every packet.
    #[inline(always)]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(word(&self.a, 0)));
        state.write_u64(u64::from_le_bytes(word(&self.a, 8)) ^ u64::from(self.spi));
        state.write_u64(u64::from_le_bytes(word(&self.b, 0)));
        state.write_u64(u64::from_le_bytes(word(&self.b, 8)));
        state.write_u64(
            u64::from(self.a_port)
                | u64::from(self.b_port) << 16
                | u64::from(self.proto.0) << 32
                | u64::from(self.vlan) << 40,
        );
    }
}

impl Key {
    /// The key of a decoded packet, and whether the packet was sent by endpoint `a`.
    #[inline]
    pub fn of(d: &Decoded) -> (Key, bool) {
        // Only TCP and UDP yield ports (in AH's transport mode, the protected header's).
        let (sp, dp) = d.ports().unwrap_or((0, 0));
        let ip = &d.ip;
        // Byte-wise order of the addresses, compared as two big-endian numbers rather than
        // byte by byte.
        let (src, dst) = (ip.src, ip.dst);
        let from_a = (src, sp) <= (dst, dp);
        let (a, a_port, b, b_port) = if from_a {
            (src, sp, dst, dp)
        } else {
            (dst, dp, src, sp)
        };
        let key = Key {
            a: a.to_be_bytes(),
            b: b.to_be_bytes(),
            a_port,
            b_port,
            proto: ip.proto,
            vlan: d.vlan,
            spi: match d.upper {
                Upper::Esp { spi } => spi,
                _ => 0,
            },
        };
        (key, from_a)
    }
}

/// The flow-table shard of a packet: a fixed (unseeded) hash of its address pair and VLAN,
/// the same in both directions, for every fragment of a datagram, and in every run.
#[inline]
pub fn shard_of(d: &Decoded) -> u8 {
    shard_of_pair(&d.ip.src.to_be_bytes(), &d.ip.dst.to_be_bytes(), d.vlan)
}

/// The shard of the flows between two addresses on a VLAN, in either direction.
#[inline]
pub fn shard_of_pair(src: &[u8; 16], dst: &[u8; 16], vlan: u16) -> u8 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let side = |a: &[u8; 16]| {
        let h = u64::from_le_bytes(word(a, 0))
            .wrapping_mul(K)
            .rotate_left(17)
            ^ u64::from_le_bytes(word(a, 8));
        h.wrapping_mul(K)
    };
    // Adding the two sides makes the hash symmetric.
    let h = side(src).wrapping_add(side(dst)) ^ u64::from(vlan);
    let h = h.wrapping_mul(K);
    // SHARDS is 64: the top six bits.
    (h >> 58) as u8
}

#[inline]
fn word(bytes: &[u8; 16], at: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Fragment, Ip, IpVersion};

    fn packet(src: u8, sp: u16, dst: u8, dp: u16) -> Decoded {
        Decoded {
            vlan: 0,
            ip: Ip {
                version: IpVersion::V6,
                src: u128::from_be_bytes([src; 16]),
                dst: u128::from_be_bytes([dst; 16]),
                proto: IpProto::TCP,
                fragment: Fragment::None,
                len: 40,
                captured: 40,
            },
            upper: Upper::Ports {
                src: sp,
                dst: dp,
                tcp_flags: 0,
                seq: 0,
            },
        }
    }

    #[test]
    fn both_directions_share_a_key() {
        let (k1, a1) = Key::of(&packet(1, 50000, 2, 445));
        let (k2, a2) = Key::of(&packet(2, 445, 1, 50000));
        assert_eq!(k1, k2);
        assert!(a1);
        assert!(!a2);
    }

    #[test]
    fn same_address_orders_by_port_and_esp_keeps_spi() {
        let (k, from_a) = Key::of(&packet(1, 9000, 1, 80));
        assert_eq!((k.a_port, k.b_port, from_a), (80, 9000, false));
        let mut esp = packet(1, 0, 2, 0);
        esp.ip.proto = IpProto::ESP;
        esp.upper = Upper::Esp { spi: 7 };
        let (k, _) = Key::of(&esp);
        assert_eq!((k.spi, k.a_port, k.b_port), (7, 0, 0));
    }
}
