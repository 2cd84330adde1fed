//! The notes of a report: what its rows alone do not say (packets a filter left out, link
//! types portscope does not decode, what bounded state forgot, what announcements did).
//! The table prints them last and the HTML page under its tables, from this one list.

use super::{human_bytes, thousands, Summary};

/// Every note `s` calls for, in a fixed order; each one sentence, without a final period.
pub fn notes(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    let filtered: Vec<_> = s.inputs.iter().filter_map(|i| i.filtered).collect();
    if !filtered.is_empty() {
        let (packets, bytes) = filtered
            .iter()
            .fold((0, 0), |(p, b), f| (p + f.packets, b + f.bytes));
        out.push(format!(
            "the filter (-f) left out {} packets ({}), which are not counted above",
            thousands(packets),
            human_bytes(bytes)
        ));
    }
    for link in &s.undecodable.unsupported_link_types {
        out.push(format!(
            "{} packets of link type {} ({}), which portscope does not decode",
            thousands(link.packets),
            link.dlt,
            link.name
        ));
    }
    for input in s.inputs.iter().filter(|i| i.link_types.len() > 1) {
        let named: Vec<String> = input
            .link_types
            .iter()
            .map(|l| format!("{} ({})", l.name, l.dlt))
            .collect();
        out.push(format!(
            "{} has frames of {} link types: {}",
            input.name,
            named.len(),
            named.join(", ")
        ));
    }
    if s.evicted_flows > 0 {
        out.push(format!(
            "{} flows were ended early because the flow table was full (--max-flows); their counts are kept",
            thousands(s.evicted_flows)
        ));
    }
    if s.orphan_fragments > 0 {
        out.push(format!(
            "{} IP fragments arrived without their first fragment and are counted as unclassified",
            thousands(s.orphan_fragments)
        ));
    }
    if s.unnamed_binds > 0 {
        out.push(format!(
            "{} DCE/RPC binds named interfaces past the bound of {} unknown interfaces per shard; their connections keep their port rows",
            thousands(s.unnamed_binds),
            crate::catalog::UNKNOWN_INTERFACES_PER_SHARD
        ));
    }
    if s.smb_forgotten > 0 {
        out.push(format!(
            "{} SMB trees, open pipes or requests were pushed out of a connection's bounded state, or were in a segment past the {} messages read for names; what they would have named stays in the port rows",
            thousands(s.smb_forgotten),
            crate::inspect::smb::MAX_MESSAGES,
        ));
    }
    if !s.smb_undecrypted.is_empty() {
        let messages: u64 = s.smb_undecrypted.iter().map(|u| u.messages).sum();
        let sessions: Vec<&str> = s
            .smb_undecrypted
            .iter()
            .map(|u| u.session.as_str())
            .collect();
        out.push(format!(
            "{} encrypted SMB messages of {} (--smb-keys) did not decrypt with the keys given: nothing is named from them, and they stay smb-encrypted (an SMB 3.1.1 session given its session key alone needs its NEGOTIATE and SESSION_SETUP messages in the capture)",
            thousands(messages),
            if sessions.len() == 1 {
                format!("session {}", sessions[0])
            } else {
                format!("sessions {}", sessions.join(", "))
            }
        ));
    }
    let e = &s.expectations;
    if e.announced > 0 {
        out.push(format!(
            "dynamic-port announcements (endpoint mapper, FTP, TFTP): {} seen, {} flows labelled by them, {} unused",
            thousands(e.announced),
            thousands(e.matched),
            thousands(e.unused)
        ));
    }
    out
}
