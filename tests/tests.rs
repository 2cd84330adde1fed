//! portscope's integration tests: one binary, one module per area.

// Test helpers unwrap freely: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// How each generated fixture is built, and that the committed files match.
mod fixtures;
// Helpers to run the binary and read its JSON.
mod util;

// `portscope catalog`: dump (against the seed), lookup, check, bad catalogs.
mod catalog;
// `portscope classify` on the fixtures: exact rows, totals, formats, errors.
mod classify;
// Tunnels and dynamic ports on the generated fixtures.
mod dynamic;
// portscope against the tshark oracle over the corpus in tests/corpus/ and the fixtures.
mod corpus;
// Tunnels and dynamic ports on the corpus, against tshark.
mod corpus_inner;
// DCE/RPC binds naming their connections: the fixture, and the corpus against tshark.
mod rpc;
// DCE/RPC connections context by context.
mod rpc_contexts;
// SMB connections split by the trees and pipes their messages address: the fixture, and
// the corpus against tshark.
mod smb;
// SMB state that forgets only what ended: long sessions, long names, offloaded segments.
mod smb_state;
// Encrypted SMB3 read with the analyst's keys, against tshark given the same keys.
mod smb3;
// IPFIX export against nfcapd/nfdump and ipfixDump; bad collector URLs.
mod ipfix;
// `portscope merge`: reports that add up to one run, and bad reports.
mod merge;
// One capture, one answer through every path.
mod metamorphic;
// `portscope live` on the loopback interface (needs root, as CI has).
mod live;
// The tshark oracle: each packet's service row from tshark's dissection and the catalog.
mod oracle;
// The block reader against libpcap on every capture.
mod readers;
// The analyst's report: filters, intervals, servers, HTML.
mod report;
// The README's console examples, run against the binary.
mod readme;
// Broken and hostile input: the whole corpus, floods, bad inputs among good ones.
mod robustness;
