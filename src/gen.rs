//! Synthetic captures: traffic of the catalog's services, the same bytes for the same seed.
//!
//! Used by `portscope gen`, the benchmarks and the fixtures. Packets are built with
//! etherparse (so they are well-formed by an independent implementation) and written with
//! libpcap's savefile writer.

use etherparse::{IpNumber, PacketBuilder, PacketBuilderStep, VlanId};
use pcap::{Capture, Linktype, Packet, PacketHeader, Precision};
use std::net::IpAddr;
use std::path::Path;

/// What `portscope gen` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub packets: u64,
    pub flows: u64,
    pub seed: u64,
    /// Every packet 64 bytes on the wire, IPv4 only.
    pub small: bool,
}

/// splitmix64: a tiny generator whose output never changes with a dependency upgrade, so a
/// seed names the same capture forever.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What a flow carries above IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
    Icmp,
    /// Another IP protocol with an opaque payload (GRE 47, ESP 50, AH 51...).
    Ip(u8),
}

/// A flow of the synthetic mix.
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    pub l4: L4,
    pub client: IpAddr,
    pub server: IpAddr,
    pub client_port: u16,
    pub server_port: u16,
    pub vlan: Option<u16>,
}

/// (kind, server port or 0, weight). Ports 0 with TCP/UDP mean a dynamic (both-high) port.
const MIX: &[(L4, u16, u64)] = &[
    (L4::Tcp, 445, 20),
    (L4::Tcp, 135, 8),
    (L4::Tcp, 139, 4),
    (L4::Tcp, 389, 5),
    (L4::Tcp, 88, 3),
    (L4::Tcp, 443, 10),
    (L4::Tcp, 80, 8),
    (L4::Tcp, 3389, 6),
    (L4::Tcp, 1433, 3),
    (L4::Tcp, 3268, 2),
    (L4::Tcp, 636, 2),
    (L4::Tcp, 25, 2),
    (L4::Tcp, 110, 1),
    (L4::Tcp, 143, 1),
    (L4::Tcp, 21, 1),
    (L4::Tcp, 1723, 1),
    (L4::Tcp, 593, 1),
    (L4::Tcp, 464, 1),
    (L4::Tcp, 0, 6),
    (L4::Tcp, 22, 2),
    (L4::Udp, 53, 8),
    (L4::Udp, 137, 4),
    (L4::Udp, 138, 2),
    (L4::Udp, 88, 2),
    (L4::Udp, 389, 2),
    (L4::Udp, 123, 3),
    (L4::Udp, 161, 2),
    (L4::Udp, 500, 2),
    (L4::Udp, 4500, 2),
    (L4::Udp, 1434, 1),
    (L4::Udp, 67, 1),
    (L4::Udp, 1812, 1),
    (L4::Udp, 1900, 2),
    (L4::Udp, 3343, 1),
    (L4::Udp, 0, 1),
    (L4::Udp, 514, 1),
    (L4::Icmp, 0, 2),
    (L4::Ip(47), 0, 1),
    (L4::Ip(50), 0, 2),
    (L4::Ip(51), 0, 1),
];

impl Flow {
    fn random(rng: &mut Rng, index: u64, small: bool) -> Flow {
        let total: u64 = MIX.iter().map(|m| m.2).sum();
        let mut pick = rng.below(total);
        let &(l4, port, _) = MIX
            .iter()
            .find(|m| {
                let hit = pick < m.2;
                pick = pick.saturating_sub(m.2);
                hit
            })
            .unwrap_or(&MIX[0]);
        let v6 = !small && rng.below(10) == 0;
        let host = |net: u8, n: u64| -> IpAddr {
            let [_, _, _, _, _, a, b, c] = n.to_be_bytes();
            if v6 {
                let mut addr = [0u8; 16];
                addr[0] = 0xfd;
                addr[1] = net;
                addr[13] = a;
                addr[14] = b;
                addr[15] = c;
                IpAddr::from(addr)
            } else {
                IpAddr::from([net, a, b, c.max(1)])
            }
        };
        let client_port = 49152 + u16::try_from(rng.below(16_000)).unwrap_or(0);
        let server_port = match (l4, port) {
            (L4::Tcp | L4::Udp, 0) => 49152 + u16::try_from(rng.below(16_000)).unwrap_or(0),
            _ => port,
        };
        Flow {
            l4,
            client: host(10, index.wrapping_mul(7919) + rng.below(1 << 20)),
            server: host(172, rng.below(512)),
            client_port,
            server_port,
            vlan: (rng.below(10) == 0).then(|| 100 + u16::try_from(rng.below(8)).unwrap_or(0)),
        }
    }

    /// One frame of this flow, `from_client` or not, with `payload` bytes above the
    /// transport header (or above IP for other protocols).
    pub fn frame(&self, from_client: bool, flags: TcpFlags, payload: usize) -> Vec<u8> {
        let (src, dst, sport, dport) = if from_client {
            (self.client, self.server, self.client_port, self.server_port)
        } else {
            (self.server, self.client, self.server_port, self.client_port)
        };
        let eth = PacketBuilder::ethernet2([0, 0x50, 0x56, 0, 0, 1], [0, 0x50, 0x56, 0, 0, 2]);
        let ip = match self.vlan {
            Some(v) => ip_step(
                eth.single_vlan(VlanId::try_new(v).unwrap_or(VlanId::ZERO)),
                src,
                dst,
            ),
            None => ip_step(eth, src, dst),
        };
        let body = vec![0x5a; payload];
        let mut out = Vec::with_capacity(payload + 80);
        let written = match self.l4 {
            L4::Tcp => {
                let mut t = ip.tcp(sport, dport, 1, 65_000);
                if flags.syn {
                    t = t.syn();
                }
                if flags.ack {
                    t = t.ack(1);
                }
                if flags.fin {
                    t = t.fin();
                }
                if flags.rst {
                    t = t.rst();
                }
                t.write(&mut out, &body).is_ok()
            }
            L4::Udp => ip.udp(sport, dport).write(&mut out, &body).is_ok(),
            L4::Icmp => match src {
                IpAddr::V4(_) => ip.icmpv4_echo_request(1, 1).write(&mut out, &body).is_ok(),
                IpAddr::V6(_) => ip.icmpv6_echo_request(1, 1).write(&mut out, &body).is_ok(),
            },
            L4::Ip(p) => {
                // ESP, GRE and AH have headers of their own: never an empty payload.
                let mut body = body;
                body.resize(body.len().max(12), 0x5a);
                if p == 50 && body.len() >= 4 {
                    // ESP: an SPI per direction.
                    body[..4].copy_from_slice(&(0x1000 + u32::from(from_client)).to_be_bytes());
                }
                if p == 47 && body.len() >= 4 {
                    body[..4].copy_from_slice(&[0, 0, 0x08, 0x00]);
                }
                ip.write(&mut out, IpNumber(p), &body).is_ok()
            }
        };
        debug_assert!(written);
        out
    }
}

fn ip_step<T>(
    step: PacketBuilderStep<T>,
    src: IpAddr,
    dst: IpAddr,
) -> PacketBuilderStep<etherparse::IpHeaders>
where
    PacketBuilderStep<T>: IpStep,
{
    step.ip_of(src, dst)
}

/// The builder steps that can take an IP header.
pub trait IpStep {
    fn ip_of(self, src: IpAddr, dst: IpAddr) -> PacketBuilderStep<etherparse::IpHeaders>;
}

macro_rules! ip_step_impl {
    ($t:ty) => {
        impl IpStep for PacketBuilderStep<$t> {
            fn ip_of(self, src: IpAddr, dst: IpAddr) -> PacketBuilderStep<etherparse::IpHeaders> {
                match (src, dst) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => self.ipv4(s.octets(), d.octets(), 64),
                    (s, d) => self.ipv6(v6(s), v6(d), 64),
                }
            }
        }
    };
}
ip_step_impl!(etherparse::Ethernet2Header);
ip_step_impl!(etherparse::VlanHeader);

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// TCP flags of a generated segment.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// The frames of a synthetic mix, in capture order: (time in ns, frame).
pub fn frames(spec: &Spec) -> impl Iterator<Item = (u64, Vec<u8>)> {
    let mut rng = Rng::new(spec.seed);
    let flows: Vec<Flow> = (0..spec.flows.max(1))
        .map(|i| Flow::random(&mut rng, i, spec.small))
        .collect();
    // Heavy-tailed flow sizes: a few flows carry most packets.
    let mut cumulative = Vec::with_capacity(flows.len());
    let mut sum = 0u64;
    for _ in &flows {
        sum += 1 + 1000 / (rng.below(1000) + 1);
        cumulative.push(sum);
    }
    let mut started = vec![false; flows.len()];
    let small = spec.small;
    let base_ns = 1_700_000_000u64 * 1_000_000_000;
    (0..spec.packets).map(move |i| {
        let ts = base_ns + i * 20_000 + rng.below(20_000);
        // One packet in 200 is ARP: traffic that is not IP.
        if rng.below(200) == 0 {
            return (ts, arp_frame(small));
        }
        let target = rng.below(sum);
        let idx = cumulative
            .partition_point(|&c| c <= target)
            .min(flows.len() - 1);
        let flow = &flows[idx];
        let first = !started[idx];
        started[idx] = true;
        let from_client = first || rng.below(2) == 0;
        let flags = TcpFlags {
            syn: first,
            ack: !first,
            ..TcpFlags::default()
        };
        if small {
            // Ethernet pads short frames: the IP packet is as small as it goes.
            let mut f = flow.frame(from_client, flags, 0);
            f.resize(64, 0);
            return (ts, f);
        }
        let payload = match rng.below(10) {
            0..=3 => 0,
            4..=6 => 1400,
            _ => 1 + usize::try_from(rng.below(1300)).unwrap_or(0),
        };
        (ts, flow.frame(from_client, flags, payload))
    })
}

fn arp_frame(small: bool) -> Vec<u8> {
    let mut f = vec![0u8; if small { 64 } else { 60 }];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0, 0x50, 0x56, 0, 0, 9]);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f
}

/// A frame to write: capture time (ns), wire length, and the bytes to store (at most the
/// wire length; fewer when the capture is cut short by a snapshot length).
pub type Record = (u64, u32, Vec<u8>);

/// Writes frames to a classic pcap file of link type `dlt`, with micro- or nanosecond
/// timestamps.
///
/// # Errors
/// libpcap's error if the file cannot be created.
pub fn write_pcap(
    path: &Path,
    dlt: i32,
    nano: bool,
    records: impl IntoIterator<Item = Record>,
) -> Result<u64, pcap::Error> {
    let precision = if nano {
        Precision::Nano
    } else {
        Precision::Micro
    };
    let dead = Capture::dead_with_precision(Linktype(dlt), precision)?;
    let mut file = dead.savefile(path)?;
    let mut n = 0;
    for (ts, wire_len, bytes) in records {
        let sec = i64::try_from(ts / 1_000_000_000).unwrap_or(0);
        let frac = ts % 1_000_000_000;
        let frac = if nano { frac } else { frac / 1000 };
        let header = PacketHeader {
            ts: libc::timeval {
                tv_sec: sec,
                tv_usec: i64::try_from(frac).unwrap_or(0),
            },
            caplen: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            len: wire_len,
        };
        file.write(&Packet::new(&header, &bytes));
        n += 1;
    }
    file.flush()?;
    Ok(n)
}

/// Writes the synthetic mix of `spec` to an Ethernet pcap file.
///
/// # Errors
/// libpcap's error if the file cannot be created.
pub fn write_file(path: &Path, spec: &Spec) -> Result<u64, pcap::Error> {
    write_pcap(
        path,
        1,
        false,
        frames(spec).map(|(ts, f)| (ts, u32::try_from(f.len()).unwrap_or(u32::MAX), f)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Link};

    #[test]
    fn same_seed_same_frames_and_every_frame_decodes() {
        let spec = Spec {
            packets: 2000,
            flows: 100,
            seed: 3,
            small: false,
        };
        let a: Vec<_> = frames(&spec).collect();
        let b: Vec<_> = frames(&spec).collect();
        assert_eq!(a, b);
        let ip = a
            .iter()
            .filter(|(_, f)| decode(Link::Ethernet, f).is_ok())
            .count();
        let arp = a.iter().filter(|(_, f)| f[12..14] == [8, 6]).count();
        assert_eq!(ip + arp, 2000);
    }

    #[test]
    fn small_frames_are_64_bytes() {
        let spec = Spec {
            packets: 500,
            flows: 50,
            seed: 1,
            small: true,
        };
        assert!(frames(&spec).all(|(_, f)| f.len() == 64));
    }
}
