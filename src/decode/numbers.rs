//! The numbers of the wire that more than one header uses: IP protocol numbers and
//! ethertypes, defined once (IANA's registries). They are open newtypes, as in etherparse:
//! every value of the wire stays representable, and the named ones are constants.

/// An IP protocol number (IPv4's protocol field, IPv6's next header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpProto(pub u8);

impl IpProto {
    pub const HOPOPTS: IpProto = IpProto(0);
    pub const ICMP: IpProto = IpProto(1);
    /// IPv4 inside IP (IP-in-IP).
    pub const IPIP: IpProto = IpProto(4);
    pub const TCP: IpProto = IpProto(6);
    pub const UDP: IpProto = IpProto(17);
    /// IPv6 inside IP.
    pub const IPV6: IpProto = IpProto(41);
    pub const IPV6_ROUTING: IpProto = IpProto(43);
    pub const IPV6_FRAGMENT: IpProto = IpProto(44);
    pub const GRE: IpProto = IpProto(47);
    pub const ESP: IpProto = IpProto(50);
    pub const AH: IpProto = IpProto(51);
    pub const ICMPV6: IpProto = IpProto(58);
    pub const IPV6_DSTOPTS: IpProto = IpProto(60);
    pub const MOBILITY: IpProto = IpProto(135);
    pub const HIP: IpProto = IpProto(139);
    pub const SHIM6: IpProto = IpProto(140);

    /// Whether this is TCP or UDP, the protocols keyed by ports.
    #[inline]
    pub fn has_ports(self) -> bool {
        matches!(self, IpProto::TCP | IpProto::UDP)
    }
}

/// An ethertype (IEEE 802.3), also the protocol type of GRE (RFC 2784) and of Linux cooked
/// captures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
    /// Transparent Ethernet bridging: an Ethernet frame inside GRE (NVGRE).
    pub const TEB: EtherType = EtherType(0x6558);
    pub const VLAN: EtherType = EtherType(0x8100);
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// PPP, as PPTP's enhanced GRE carries it (RFC 2637).
    pub const PPP: EtherType = EtherType(0x880b);
    pub const MPLS: EtherType = EtherType(0x8847);
    pub const MPLS_MULTICAST: EtherType = EtherType(0x8848);
    pub const PPPOE_SESSION: EtherType = EtherType(0x8864);
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// ERSPAN type II in GRE (type I shares it, without the ERSPAN header).
    pub const ERSPAN_2: EtherType = EtherType(0x88be);
    /// ERSPAN type III in GRE.
    pub const ERSPAN_3: EtherType = EtherType(0x22eb);
    /// Cisco MetaData (security group tags) in GRE.
    pub const CISCO_METADATA: EtherType = EtherType(0x8909);
    /// Aruba's GRE mirroring of 802.11 frames: 0x8200 to 0x8370, in steps of 0x10 (the
    /// range Wireshark's GRE dissector hands to its 802.11 dissector).
    pub const ARUBA_FIRST: EtherType = EtherType(0x8200);
    pub const ARUBA_LAST: EtherType = EtherType(0x8370);
    /// The pre-standard 802.1ad tag some switches still send.
    pub const QINQ_OLD: EtherType = EtherType(0x9100);

    /// Whether GRE with this protocol type carries an 802.11 frame (Aruba).
    #[inline]
    pub fn is_aruba_wlan(self) -> bool {
        (EtherType::ARUBA_FIRST.0..=EtherType::ARUBA_LAST.0).contains(&self.0) && self.0 & 0xf == 0
    }
}
