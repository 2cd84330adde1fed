//! portscope: classify packet captures by the Windows services whose ports they use.
//!
//! The library is the whole engine; the `portscope` binary is a thin CLI over it.
//! See ARCHITECTURE.md for the modules, the threads and the invariants.

#![forbid(unsafe_code)]

pub mod announce;
pub mod capture;
pub mod catalog;
pub mod classify;
pub mod decode;
pub mod export;
pub mod flow;
pub mod gen;
pub mod inspect;
pub mod pipeline;
pub mod report;
pub mod worker;
