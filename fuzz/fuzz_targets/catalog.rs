//! Arbitrary text through both catalog parsers and the lookup table: no panic; a catalog
//! that parses builds a table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portscope::catalog::{parse, Catalog, Format, PortTable, Transport};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Toml, Format::Services] {
        if parse(text, format, 0).is_ok() {
            let mut catalog = Catalog::default();
            if catalog.add_text("fuzz", text, format).is_ok() {
                let table = PortTable::build(&catalog);
                for port in [1, 80, 135, 1024, 50000, 65535] {
                    let _ = table.lookup(Transport::Tcp, Some(port));
                    let _ = table.classify_ports(Transport::Udp, port, 65535 - port);
                }
            }
        }
    }
});
