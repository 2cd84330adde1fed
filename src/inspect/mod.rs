//! Payload evidence: what the first bytes of a segment say about the service behind its
//! connection, beyond what the port table can say. Today: the DCE/RPC interface a
//! connection binds to ([`rpc`]).
//!
//! Like the announcement parsers, each reads one segment, bounds-checked, without
//! allocating or reassembling, and only outer packets are read.

pub mod rpc;
pub mod smb;

pub use rpc::{interface, Bound};
