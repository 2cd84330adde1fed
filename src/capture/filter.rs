//! BPF filters on capture files (`classify -f`): libpcap's compiler, run on every frame a
//! reader reads, before it is kept, so the block reader filters in place and libpcap's own
//! reader filters the same way. What the filter drops is counted, never lost silently.

use super::Error;
use pcap::{BpfProgram, Capture, Linktype};

/// A filter expression, as tcpdump takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    expr: String,
}

/// Packets and bytes a filter dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    pub packets: u64,
    /// Wire lengths.
    pub bytes: u64,
}

impl Filter {
    /// Checks the expression, so a typo is one error before any input is opened: it must
    /// compile for one of the usual link types (Ethernet, 802.11 with or without radiotap,
    /// Linux cooked, raw IP); each input then compiles it for its own.
    ///
    /// # Errors
    /// [`Error::Filter`] with libpcap's message for Ethernet.
    pub fn new(expr: &str) -> Result<Filter, Error> {
        let filter = Filter {
            expr: expr.to_string(),
        };
        let ethernet = filter.compile(1);
        if ethernet.is_ok()
            || [127, 105, 113, 12]
                .iter()
                .any(|&dlt| filter.compile(dlt).is_ok())
        {
            return Ok(filter);
        }
        ethernet.map(|_| filter)
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The program for frames of link type `dlt` (a DLT value, as libpcap reports it).
    ///
    /// # Errors
    /// [`Error::Filter`]: the expression is invalid, or names headers this link type has
    /// not (`ether host` on raw IP).
    pub fn compile(&self, dlt: i32) -> Result<Program, Error> {
        let bad = |e: pcap::Error| Error::Filter {
            filter: self.expr.clone(),
            message: match e {
                pcap::Error::PcapError(m) => m,
                other => other.to_string(),
            },
        };
        let dead = Capture::dead(Linktype(dlt)).map_err(bad)?;
        let program = dead.compile(&self.expr, true).map_err(bad)?;
        Ok(Program {
            program,
            filtered: Filtered::default(),
        })
    }
}

/// A compiled filter and what it dropped.
pub struct Program {
    program: BpfProgram,
    pub filtered: Filtered,
}

impl Program {
    /// Whether the frame `bytes` (all that was captured of it) passes; a frame that does not
    /// is counted in [`Program::filtered`].
    #[inline]
    pub fn pass(&mut self, bytes: &[u8], wire_len: u32) -> bool {
        let pass = self.program.filter(bytes);
        if !pass {
            self.filtered.packets += 1;
            self.filtered.bytes += u64::from(wire_len);
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::test_util::eth_tcp4;

    #[test]
    fn passes_and_counts() {
        let filter = Filter::new("tcp port 445").unwrap();
        let mut p = filter.compile(1).unwrap();
        assert!(p.pass(&eth_tcp4(40000, 445, &[]), 60));
        assert!(!p.pass(&eth_tcp4(40000, 135, &[]), 70));
        assert_eq!(
            p.filtered,
            Filtered {
                packets: 1,
                bytes: 70
            }
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = Filter::new("tcp port").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad filter \"tcp port\": can't parse filter expression: syntax error"
        );
        // Valid, but not for raw IP, which has no Ethernet header.
        let f = Filter::new("ether host 1:2:3:4:5:6").unwrap();
        assert!(f.compile(12).is_err());
        // Valid for 802.11 only: accepted, and compiled for each input's own link type.
        let f = Filter::new("wlan type data").unwrap();
        assert!(f.compile(127).is_ok());
    }
}
