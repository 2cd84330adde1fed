//! Payload evidence: what a segment says about the service behind its connection, beyond
//! what the port table can say: the DCE/RPC interface a connection binds to ([`rpc`]), and
//! the trees, pipes and binds of SMB messages ([`smb`]).
//!
//! Like the announcement parsers, each reads one segment, bounds-checked, without
//! allocating or reassembling, and only outer packets are read.

pub mod rpc;
pub mod smb;

pub use rpc::{interface, Bound};
