//! An IPFIX (RFC 7011) message encoder for portscope's flow records: bidirectional records
//! (RFC 5103) with the service row as `applicationId` (RFC 6759), and an options template
//! that names each application.
//!
//! The crates on crates.io that speak IPFIX parse it; none writes it, so this is a small
//! writer of exactly the three templates portscope sends, checked against what nfdump 1.7
//! reads: everything is big-endian and of fixed length except `applicationId` in flow
//! records, which is variable-length (RFC 7011 §7): nfdump 1.7.1 copies a fixed-length
//! octet array as a number (reversing its bytes) but a variable-length one as it is. A flow
//! with no application carries five zero bytes (engine 0 is "invalid"): nfdump names an
//! empty one after whatever record came before. The options strings are fixed-length (nfdump
//! reads options only at fixed lengths).

/// Template IDs (256 and up are data sets, RFC 7011 §3.3.2).
pub const TEMPLATE_V4: u16 = 256;
pub const TEMPLATE_V6: u16 = 257;
pub const TEMPLATE_APPS: u16 = 258;
/// The templates of flows inside tunnels (`--ipfix-inner`), sent in an observation domain
/// of their own: the data templates and `observationDomainId` (149) last, which nfdump
/// 1.7.1 reads into each record (`%odid`, `observation domain id N`).
pub const TEMPLATE_INNER_V4: u16 = 259;
pub const TEMPLATE_INNER_V6: u16 = 260;

/// The lengths of a flow record in the IPv4 and IPv6 templates; inner records have the
/// 4-byte domain more.
pub const RECORD_V4_LEN: usize = 74;
pub const RECORD_V6_LEN: usize = 98;
const DOMAIN_LEN: usize = 4;
/// The longest data record: an inner IPv6 one.
pub const MAX_RECORD_LEN: usize = RECORD_V6_LEN + DOMAIN_LEN;

/// The private enterprise number of reverse information elements (RFC 5103 §6.1).
pub const REVERSE_PEN: u32 = 29305;

/// Classification engine 6, "user defined" (RFC 6759 §4.1).
pub const ENGINE_USER: u8 = 6;

/// Fixed lengths of the application options' strings; a string is cut at a character
/// boundary and padded with NULs, keeping at least one (nfdump overwrites the last byte).
/// The description is at least as long as the name (nfdump 1.7.1 checks the description's
/// UTF-8 over the name's length), and the two add up to at most 253 bytes (nfdump shows
/// neither beyond that).
pub const NAME_LEN: usize = 64;
pub const DESC_LEN: usize = 188;

const HEADER_LEN: usize = 16;
/// The length of a variable-length field in a template (RFC 7011 §7).
const VARIABLE: u16 = 0xffff;
const SET_HEADER_LEN: usize = 4;

/// (element id, length, enterprise) of the data templates, in record order; the address
/// fields are 4 bytes in the IPv4 template and 16 in the IPv6 one. Inner templates add
/// [`OBSERVATION_DOMAIN`].
const fn data_fields(v6: bool) -> [(u16, u16, u32); 16] {
    let (src, dst, len) = if v6 { (27, 28, 16) } else { (8, 12, 4) };
    [
        (152, 8, 0), // flowStartMilliseconds
        (153, 8, 0), // flowEndMilliseconds
        (src, len, 0),
        (dst, len, 0),
        (7, 2, 0),           // sourceTransportPort
        (11, 2, 0),          // destinationTransportPort
        (4, 1, 0),           // protocolIdentifier
        (6, 2, 0),           // tcpControlBits
        (6, 2, REVERSE_PEN), // reverse tcpControlBits
        (58, 2, 0),          // vlanId
        (136, 1, 0),         // flowEndReason
        (2, 8, 0),           // packetDeltaCount
        (1, 8, 0),           // octetDeltaCount
        (2, 8, REVERSE_PEN), // reverse packetDeltaCount
        (1, 8, REVERSE_PEN), // reverse octetDeltaCount
        (95, VARIABLE, 0),   // applicationId: engine and a 4-byte selector, or zeros
    ]
}

/// observationDomainId, the last field of inner records.
const OBSERVATION_DOMAIN: (u16, u16, u32) = (149, DOMAIN_LEN as u16, 0);

/// The applications' options: scoped to the observation domain (nfdump 1.7.1 skips scope
/// fields, so `applicationId` must be an ordinary field of the record to be read).
const APP_FIELDS: [(u16, u16); 4] = [
    (149, 4),              // observationDomainId (scope)
    (95, 5),               // applicationId
    (96, NAME_LEN as u16), // applicationName
    (94, DESC_LEN as u16), // applicationDescription
];

/// Why a flow ended, as `flowEndReason` (IE 136) numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EndReason {
    IdleTimeout = 1,
    ActiveTimeout = 2,
    EndOfFlow = 3,
    ForcedEnd = 4,
    LackOfResources = 5,
}

/// One bidirectional flow record: forward is the originator's direction. (The IPFIX file
/// orders records by start time, then by their encoded bytes.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub start_ms: u64,
    pub end_ms: u64,
    /// Addresses as 16 bytes; IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub tcp_flags: [u8; 2],
    pub vlan: u16,
    pub end: EndReason,
    pub packets: [u64; 2],
    pub octets: [u64; 2],
    /// The selector of the record's application; 0 for none (`applicationId` is then
    /// zero).
    pub app: u32,
}

/// The 5 bytes of an `applicationId`: engine 6 and the selector, or zeros for none.
pub fn application_id(selector: u32) -> [u8; 5] {
    if selector == 0 {
        return [0; 5];
    }
    let s = selector.to_be_bytes();
    [ENGINE_USER, s[0], s[1], s[2], s[3]]
}

/// A selector that names `name` in every run and on every sensor: FNV-1a (32 bits) of its
/// bytes, never 0 (which means "no application").
pub fn selector(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

fn v4_of(addr: &[u8; 16]) -> Option<[u8; 4]> {
    let (prefix, v4) = addr.split_at(12);
    (prefix == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]).then(|| {
        let mut out = [0; 4];
        out.copy_from_slice(v4);
        out
    })
}

/// `text` cut to fit `len` bytes with at least one NUL after it, at a character boundary.
fn fixed_string(out: &mut Vec<u8>, text: &str, len: usize) {
    let mut end = text.len().min(len - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&text.as_bytes()[..end]);
    out.resize(out.len() + len - end, 0);
}

/// Builds messages of at most `mtu` bytes for one observation domain, numbering them as
/// RFC 7011 §3.1 asks: each header carries the count of data records sent before it.
/// An inner encoder (flows inside tunnels) sends the inner templates, whose records carry
/// the domain too.
#[derive(Debug)]
pub struct Encoder {
    domain: u32,
    inner: bool,
    mtu: usize,
    export_time: u32,
    /// Data records in messages already finished.
    sequence: u32,
    buf: Vec<u8>,
    /// Records in `buf`, and where its open set starts (and that set's id).
    records: u32,
    set: Option<(usize, u16)>,
}

impl Encoder {
    /// An encoder whose messages are at most `mtu` bytes (at least 512, so that the
    /// largest set fits) and carry `export_time` (seconds since the epoch).
    pub fn new(domain: u32, mtu: usize, export_time: u32) -> Encoder {
        let mtu = mtu.clamp(512, usize::from(u16::MAX));
        Encoder {
            domain,
            inner: false,
            mtu,
            export_time,
            sequence: 0,
            buf: Vec::with_capacity(mtu),
            records: 0,
            set: None,
        }
    }

    /// An encoder of flows inside tunnels: the inner templates, in `domain`.
    pub fn new_inner(domain: u32, mtu: usize, export_time: u32) -> Encoder {
        Encoder {
            inner: true,
            ..Encoder::new(domain, mtu, export_time)
        }
    }

    /// The data template IDs, IPv4 and IPv6.
    fn data_templates(&self) -> (u16, u16) {
        if self.inner {
            (TEMPLATE_INNER_V4, TEMPLATE_INNER_V6)
        } else {
            (TEMPLATE_V4, TEMPLATE_V6)
        }
    }

    /// Data records in the messages finished so far.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// The template set and the options template set, in a message of their own.
    pub fn templates(&mut self, out: &mut impl FnMut(&[u8], u32)) {
        self.flush(out);
        self.start_message();
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 2, 0, 0]);
        let (v4_id, v6_id) = self.data_templates();
        for (id, v6) in [(v4_id, false), (v6_id, true)] {
            let fields = data_fields(v6);
            let extra: &[(u16, u16, u32)] = if self.inner {
                &[OBSERVATION_DOMAIN]
            } else {
                &[]
            };
            self.put16(id);
            self.put16((fields.len() + extra.len()) as u16);
            for &(ie, len, pen) in fields.iter().chain(extra) {
                if pen == 0 {
                    self.put16(ie);
                    self.put16(len);
                } else {
                    self.put16(ie | 0x8000);
                    self.put16(len);
                    self.put32(pen);
                }
            }
        }
        self.end_set_at(start);
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 3, 0, 0]);
        self.put16(TEMPLATE_APPS);
        self.put16(APP_FIELDS.len() as u16);
        self.put16(1);
        for (ie, len) in APP_FIELDS {
            self.put16(ie);
            self.put16(len);
        }
        self.end_set_at(start);
        self.flush(out);
    }

    /// One application's options record: its selector, name and description. Each goes in
    /// a set of its own: nfdump 1.7.1 steps through an options set by a record size that
    /// leaves out the scope, and so reads only the first record of a set right.
    pub fn application(
        &mut self,
        selector: u32,
        name: &str,
        description: &str,
        out: &mut impl FnMut(&[u8], u32),
    ) {
        let len = 4 + 5 + NAME_LEN + DESC_LEN;
        self.close_set();
        self.room(SET_HEADER_LEN + len, out);
        self.open_set(TEMPLATE_APPS);
        self.put32(self.domain);
        self.buf.extend_from_slice(&application_id(selector));
        fixed_string(&mut self.buf, name, NAME_LEN);
        fixed_string(&mut self.buf, description, DESC_LEN);
        self.records += 1;
        self.close_set();
    }

    /// One flow record.
    pub fn record(&mut self, r: &Record, out: &mut impl FnMut(&[u8], u32)) {
        let mut b = [0; MAX_RECORD_LEN];
        let (template, len) = self.encode(r, &mut b);
        self.encoded(template, &b[..len], out);
    }

    /// `r` as the bytes of its data record, and their template: what [`Encoder::encoded`]
    /// takes.
    pub fn encode(&self, r: &Record, b: &mut [u8; MAX_RECORD_LEN]) -> (u16, usize) {
        let v4 = v4_of(&r.src).zip(v4_of(&r.dst));
        let (v4_id, v6_id) = self.data_templates();
        let template = if v4.is_some() { v4_id } else { v6_id };
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            b[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&r.start_ms.to_be_bytes());
        put(&r.end_ms.to_be_bytes());
        match v4 {
            Some((src, dst)) => {
                put(&src);
                put(&dst);
            }
            None => {
                put(&r.src);
                put(&r.dst);
            }
        }
        put(&r.src_port.to_be_bytes());
        put(&r.dst_port.to_be_bytes());
        put(&[r.proto, 0, r.tcp_flags[0], 0, r.tcp_flags[1]]);
        put(&r.vlan.to_be_bytes());
        put(&[r.end as u8]);
        put(&r.packets[0].to_be_bytes());
        put(&r.octets[0].to_be_bytes());
        put(&r.packets[1].to_be_bytes());
        put(&r.octets[1].to_be_bytes());
        let id = application_id(r.app);
        put(&[id.len() as u8]);
        put(&id);
        if self.inner {
            put(&self.domain.to_be_bytes());
        }
        (template, at)
    }

    /// One data record already encoded (by [`Encoder::encode`] of an encoder like this one).
    pub fn encoded(&mut self, template: u16, record: &[u8], out: &mut impl FnMut(&[u8], u32)) {
        if self.set.map(|(_, id)| id) != Some(template) {
            self.close_set();
        }
        let need = if self.set.is_some() {
            record.len()
        } else {
            SET_HEADER_LEN + record.len()
        };
        if self.buf.len() + need > self.mtu {
            self.flush(out);
        }
        if self.buf.is_empty() {
            self.start_message();
        }
        if self.set.is_none() {
            self.open_set(template);
        }
        self.buf.extend_from_slice(record);
        self.records += 1;
    }

    /// Hands the message being built, if any, to `out` with its number of data records.
    pub fn flush(&mut self, out: &mut impl FnMut(&[u8], u32)) {
        self.close_set();
        if self.buf.is_empty() {
            return;
        }
        let len = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        out(&self.buf, self.records);
        self.sequence = self.sequence.wrapping_add(self.records);
        self.records = 0;
        self.buf.clear();
    }

    /// Makes room for `len` more bytes, finishing the message if they would not fit.
    fn room(&mut self, len: usize, out: &mut impl FnMut(&[u8], u32)) {
        if self.buf.len() + len > self.mtu {
            self.flush(out);
        }
        if self.buf.is_empty() {
            self.start_message();
        }
    }

    fn start_message(&mut self) {
        self.put16(10);
        self.put16(0);
        self.put32(self.export_time);
        self.put32(self.sequence);
        self.put32(self.domain);
        debug_assert_eq!(self.buf.len(), HEADER_LEN);
    }

    fn open_set(&mut self, id: u16) {
        self.set = Some((self.buf.len(), id));
        self.put16(id);
        self.put16(0);
    }

    fn close_set(&mut self) {
        if let Some((start, _)) = self.set.take() {
            self.end_set_at(start);
        }
    }

    fn end_set_at(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u16;
        self.buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn put16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn put32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be16(b: &[u8], at: usize) -> usize {
        usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
    }

    fn record(src: [u8; 16], app: u32) -> Record {
        Record {
            start_ms: 1_000,
            end_ms: 2_500,
            src,
            dst: src,
            src_port: 49152,
            dst_port: 445,
            proto: 6,
            tcp_flags: [0x1b, 0x12],
            vlan: 7,
            end: EndReason::EndOfFlow,
            packets: [3, 2],
            octets: [300, 200],
            app,
        }
    }

    const V4: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1];

    /// Walks a message's sets: (set id, length) each; checks the lengths add up.
    fn sets(msg: &[u8]) -> Vec<(usize, usize)> {
        assert_eq!(be16(msg, 0), 10);
        assert_eq!(be16(msg, 2), msg.len());
        let mut at = HEADER_LEN;
        let mut out = Vec::new();
        while at < msg.len() {
            let (id, len) = (be16(msg, at), be16(msg, at + 2));
            assert!(len >= SET_HEADER_LEN && at + len <= msg.len());
            out.push((id, len));
            at += len;
        }
        assert_eq!(at, msg.len());
        out
    }

    #[test]
    fn messages_stay_within_the_mtu_and_number_their_records() {
        let mut enc = Encoder::new(42, 512, 1_700_000_000);
        let mut msgs: Vec<(Vec<u8>, u32)> = Vec::new();
        let mut out = |m: &[u8], n: u32| msgs.push((m.to_vec(), n));
        enc.templates(&mut out);
        enc.application(
            selector("tcp/445"),
            "tcp/445",
            "Server, Net Logon",
            &mut out,
        );
        for i in 0..20u8 {
            let mut src = V4;
            src[15] = i;
            enc.record(&record(src, selector("tcp/445")), &mut out);
        }
        let v6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        enc.record(&record(v6, 0), &mut out);
        enc.flush(&mut out);
        let mut seq = 0;
        for (m, n) in &msgs {
            assert!(m.len() <= 512);
            assert_eq!(u32::from_be_bytes([m[8], m[9], m[10], m[11]]), seq);
            assert_eq!(u32::from_be_bytes([m[12], m[13], m[14], m[15]]), 42);
            sets(m);
            seq += n;
        }
        assert_eq!(seq, 22);
        assert_eq!(enc.sequence(), 22);
        // The templates: 16 fields each, three of them reverse (8 more bytes each), and
        // the options template with one scope field.
        assert_eq!(
            sets(&msgs[0].0),
            [(2, 4 + 2 * (4 + 16 * 4 + 3 * 4)), (3, 4 + 6 + 16)]
        );
        // The options record is alone in its set.
        assert_eq!(sets(&msgs[1].0)[0], (258, 4 + 4 + 5 + 64 + 188));
        // 74-byte IPv4 records, a 98-byte IPv6 record at the end.
        let last = sets(&msgs.last().unwrap().0);
        assert_eq!(last.last().unwrap(), &(257, 4 + 98));
        let v4_records: usize = msgs
            .iter()
            .flat_map(|(m, _)| sets(m))
            .filter(|s| s.0 == 256)
            .map(|s| (s.1 - 4) / 74)
            .sum();
        assert_eq!(v4_records, 20);
    }

    #[test]
    fn a_record_is_laid_out_in_template_order() {
        let mut enc = Encoder::new(1, 1400, 0);
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        enc.record(&record(V4, 0x0102_0304), &mut |m: &[u8], _| {
            msgs.push(m.to_vec())
        });
        enc.flush(&mut |m: &[u8], _| msgs.push(m.to_vec()));
        let r = &msgs[0][HEADER_LEN + SET_HEADER_LEN..];
        assert_eq!(r.len(), 74);
        assert_eq!(&r[0..8], &1_000u64.to_be_bytes());
        assert_eq!(&r[16..20], &[10, 0, 0, 1]);
        assert_eq!(&r[24..26], &49152u16.to_be_bytes());
        assert_eq!(r[28], 6);
        assert_eq!(&r[29..33], &[0, 0x1b, 0, 0x12]);
        assert_eq!(&r[33..35], &7u16.to_be_bytes());
        assert_eq!(r[35], 3);
        assert_eq!(&r[36..44], &3u64.to_be_bytes());
        assert_eq!(&r[60..68], &200u64.to_be_bytes());
        assert_eq!(&r[68..74], &[5, 6, 1, 2, 3, 4]);
    }

    #[test]
    fn inner_records_have_their_own_templates_and_carry_the_domain() {
        let mut enc = Encoder::new_inner(9, 1400, 0);
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        let mut out = |m: &[u8], _| msgs.push(m.to_vec());
        enc.templates(&mut out);
        enc.record(&record(V4, 0x0102_0304), &mut out);
        enc.flush(&mut out);
        // 17 fields each: the 16 of outer records and observationDomainId.
        let t = &msgs[0];
        assert_eq!(
            sets(t),
            [(2, 4 + 2 * (4 + 17 * 4 + 3 * 4)), (3, 4 + 6 + 16)]
        );
        assert_eq!(be16(t, 20), usize::from(TEMPLATE_INNER_V4));
        assert_eq!(be16(t, 22), 17);
        let last_field = 24 + 16 * 4 + 3 * 4;
        assert_eq!(&t[last_field..last_field + 4], &[0, 149, 0, 4]);
        let r = &msgs[1];
        assert_eq!(sets(r), [(usize::from(TEMPLATE_INNER_V4), 4 + 78)]);
        let r = &r[HEADER_LEN + SET_HEADER_LEN..];
        assert_eq!(&r[68..74], &[5, 6, 1, 2, 3, 4]);
        assert_eq!(&r[74..78], &9u32.to_be_bytes());
    }

    #[test]
    fn strings_are_cut_at_characters_and_end_in_nul() {
        let mut out = Vec::new();
        fixed_string(&mut out, &"é".repeat(40), NAME_LEN);
        assert_eq!(out.len(), NAME_LEN);
        assert_eq!(std::str::from_utf8(&out[..62]).unwrap(), "é".repeat(31));
        assert_eq!(&out[62..], &[0, 0]);
        assert_eq!(application_id(0), [0; 5]);
        assert_ne!(selector("tcp/445"), selector("tcp/139"));
        assert_eq!(selector("tcp/445"), selector("tcp/445"));
    }
}
