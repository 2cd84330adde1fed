//! The service catalog: records of (service, application protocol, transport, ports), loaded
//! strictly from TOML or `/etc/services` files, and the precomputed [`PortTable`] built from them.
//!
//! This module owns reading and validating catalog files and building the lookup table.
//! It knows nothing about packets or flows; `classify` asks the table, once per flow.

mod interfaces;
mod load;
mod pipes;
mod table;

pub use interfaces::{
    format_uuid, parse_interfaces, parse_uuid, swap_uuid_fields, Interface, INTERFACES_NAME,
    INTERFACES_TEXT,
};
pub use load::{load_file, parse, Format, Problem};
pub use pipes::{parse_pipes, Pipe, PIPES_NAME, PIPES_TEXT};
pub use table::{Match, MatchKind, PortTable, SetId, UNKNOWN_INTERFACES_PER_SHARD};

use crate::decode::IpProto;
use std::fmt;
use std::path::PathBuf;

/// The built-in catalog, compiled into the binary.
pub const BUILTIN_TEXT: &str = include_str!("../../catalog/windows-services.toml");

/// The name the built-in catalog goes by in every answer that says where a record came from.
pub const BUILTIN_NAME: &str = "built-in";

/// The second built-in layer: what Microsoft's current edition of the port article (KB
/// 832017, Windows Server 2008 and later) adds to the seed's 2003-era table. It only adds:
/// no seed row changes, and on a port both name the seed's record is the one used.
pub const CURRENT_TEXT: &str = include_str!("../../catalog/windows-current.toml");

/// The name the current-Windows layer goes by, beside [`BUILTIN_NAME`].
pub const CURRENT_NAME: &str = "built-in-current";

/// A transport a catalog record can name.
///
/// TCP and UDP have ports; the others are IP protocols and have none
/// (ICMP stands for both ICMP and ICMPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
    Gre,
    Esp,
    Ah,
}

impl Transport {
    /// Every transport, in the order rows and dumps list them.
    pub const ALL: [Transport; 6] = [
        Transport::Tcp,
        Transport::Udp,
        Transport::Icmp,
        Transport::Gre,
        Transport::Esp,
        Transport::Ah,
    ];

    /// The lower-case name used in catalogs, JSON and row keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
            Transport::Gre => "gre",
            Transport::Esp => "esp",
            Transport::Ah => "ah",
        }
    }

    /// Parses a transport name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether records of this transport carry ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Udp)
    }

    /// The transport of an IP protocol number, if the catalog can name it.
    /// ICMPv6 (58) counts as ICMP.
    pub fn from_ip_proto(proto: IpProto) -> Option<Transport> {
        match proto {
            IpProto::TCP => Some(Transport::Tcp),
            IpProto::UDP => Some(Transport::Udp),
            IpProto::ICMP | IpProto::ICMPV6 => Some(Transport::Icmp),
            IpProto::GRE => Some(Transport::Gre),
            IpProto::ESP => Some(Transport::Esp),
            IpProto::AH => Some(Transport::Ah),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One catalog record: an application protocol of a service on a transport and port range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The service's title, e.g. `Server`.
    pub service: String,
    /// The system service name, e.g. `lanmanserver`, where the source gives one.
    pub system_name: Option<String>,
    /// The application protocol name, e.g. `SMB`.
    pub protocol: String,
    pub transport: Transport,
    /// Inclusive port range (`(445, 445)` for one port); `None` for IP-protocol records.
    pub ports: Option<(u16, u16)>,
    /// Index into [`Catalog::sources`].
    pub source: usize,
    /// The 1-based line of the record in its file.
    pub line: usize,
}

impl Record {
    /// Whether the record names one port (as opposed to a range or an IP protocol).
    pub fn is_exact(&self) -> bool {
        matches!(self.ports, Some((lo, hi)) if lo == hi)
    }
}

/// Every loaded record, in priority order: the built-in catalog first, then each `--catalog`
/// file in the order given.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Where each layer came from: [`BUILTIN_NAME`] or a file path as the user gave it.
    pub sources: Vec<String>,
    pub records: Vec<Record>,
    /// Lines that were read but carry nothing portscope can use, e.g. `sctp` entries of an
    /// `/etc/services` file: (source, line, what).
    pub notes: Vec<(String, usize, String)>,
    /// Well-known DCE/RPC interfaces and the services that own them (built in).
    pub interfaces: Vec<Interface>,
    /// Well-known SMB named pipes and the services that listen on them (built in).
    pub pipes: Vec<Pipe>,
}

/// A catalog that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read catalog {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The first problem of an invalid catalog; `more` counts the others.
    #[error("{path}:{line}: {message}{}", more_text(*more))]
    Invalid {
        path: String,
        line: usize,
        message: String,
        more: usize,
    },
}

fn more_text(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more problem; see `portscope catalog check`)".to_string(),
        n => format!(" (and {n} more problems; see `portscope catalog check`)"),
    }
}

impl Catalog {
    /// Each service the catalog lists, with the system name of its first record: for the
    /// interface and pipe tables, which name services by title.
    pub fn services(&self) -> std::collections::HashMap<&str, Option<&str>> {
        let mut out = std::collections::HashMap::new();
        for r in &self.records {
            out.entry(r.service.as_str())
                .or_insert(r.system_name.as_deref());
        }
        out
    }

    /// The built-in catalog alone: the seed's table, then the current-Windows layer.
    ///
    /// # Errors
    /// Only if a compiled-in file is invalid, which the test suite rules out.
    pub fn builtin() -> Result<Catalog, Error> {
        let mut catalog = Catalog::default();
        catalog.add_text(BUILTIN_NAME, BUILTIN_TEXT, Format::Toml)?;
        catalog.add_text(CURRENT_NAME, CURRENT_TEXT, Format::Toml)?;
        catalog.interfaces =
            parse_interfaces(INTERFACES_TEXT, &catalog).map_err(|p| Error::Invalid {
                path: INTERFACES_NAME.to_string(),
                line: p[0].line,
                message: p[0].message.clone(),
                more: p.len() - 1,
            })?;
        // After the interfaces: a pipe names the interfaces bound over it.
        catalog.pipes = parse_pipes(PIPES_TEXT, &catalog).map_err(|p| Error::Invalid {
            path: PIPES_NAME.to_string(),
            line: p[0].line,
            message: p[0].message.clone(),
            more: p.len() - 1,
        })?;
        Ok(catalog)
    }

    /// The built-in catalog followed by `extra` files, in order.
    ///
    /// # Errors
    /// The first file that cannot be read or has a problem.
    pub fn with_extra(extra: &[PathBuf]) -> Result<Catalog, Error> {
        let mut catalog = Catalog::builtin()?;
        for path in extra {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: name.clone(),
                source,
            })?;
            catalog.add_text(&name, &text, Format::for_path(path))?;
        }
        Ok(catalog)
    }

    /// Parses `text` and appends its records as the next layer.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first problem.
    pub fn add_text(&mut self, name: &str, text: &str, format: Format) -> Result<(), Error> {
        let source = self.sources.len();
        match parse(text, format, source) {
            Ok(parsed) => {
                // Earlier layers win on an exact port or IP protocol: say so for each record
                // that will not be a candidate anywhere.
                for r in &parsed.records {
                    let taken = self.records.iter().find(|e| {
                        e.transport == r.transport
                            && (e.ports == r.ports && (r.ports.is_none() || r.is_exact()))
                    });
                    if let Some(e) = taken {
                        self.notes.push((
                            name.to_string(),
                            r.line,
                            format!(
                                "{} is already named by {} (line {}), which takes precedence; this record is not used",
                                r.ports.map_or(r.transport.to_string(), |(p, _)| format!("{}/{p}", r.transport)),
                                self.sources[e.source],
                                e.line
                            ),
                        ));
                    }
                }
                self.sources.push(name.to_string());
                self.records.extend(parsed.records);
                self.notes.extend(
                    parsed
                        .notes
                        .into_iter()
                        .map(|(line, what)| (name.to_string(), line, what)),
                );
                Ok(())
            }
            Err(mut problems) => {
                let first = problems.remove(0);
                Err(Error::Invalid {
                    path: name.to_string(),
                    line: first.line,
                    message: first.message,
                    more: problems.len(),
                })
            }
        }
    }

    /// The name of the layer a record came from.
    pub fn source_name(&self, record: &Record) -> &str {
        &self.sources[record.source]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Catalog {
        Catalog::builtin().unwrap()
    }

    fn find(c: &Catalog, t: Transport, ports: Option<(u16, u16)>) -> Vec<&Record> {
        c.records
            .iter()
            .filter(|r| r.transport == t && r.ports == ports)
            .collect()
    }

    #[test]
    fn builtin_catalog_has_every_service_of_the_seed() {
        let c = builtin();
        let seed: Vec<&Record> = c.records.iter().filter(|r| r.source == 0).collect();
        let mut services: Vec<&str> = seed.iter().map(|r| r.service.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        // 63 per-service tables in the seed, plus the Installation Bootstrap Service that only
        // its table sorted by port names.
        assert_eq!(services.len(), 64);
        assert_eq!(seed.len(), 189);
        // Then the current-Windows layer, after every seed record.
        assert_eq!(c.sources, [BUILTIN_NAME, CURRENT_NAME]);
        assert_eq!(c.records.len(), 189 + 50);
        assert!(c.records[189..].iter().all(|r| r.source == 1));
        // It adds only: nothing in it loses to a seed record.
        assert_eq!(c.notes, []);
    }

    #[test]
    fn quirk_icmp_ucp_20_is_icmp_without_ports() {
        let c = builtin();
        let icmp = find(&c, Transport::Icmp, None);
        assert_eq!(icmp.len(), 1);
        assert_eq!(icmp[0].service, "Group Policy");
        assert_eq!(icmp[0].protocol, "ICMP (ping)");
        assert!(find(&c, Transport::Udp, Some((20, 20))).is_empty());
    }

    #[test]
    fn quirk_quoted_is_quotd_on_udp() {
        let c = builtin();
        let udp17 = find(&c, Transport::Udp, Some((17, 17)));
        assert_eq!(udp17.len(), 1);
        assert_eq!(udp17[0].protocol, "Quotd");
        assert!(c.records.iter().all(|r| r.protocol != "Quoted"));
    }

    #[test]
    fn quirk_upd_is_udp() {
        let c = builtin();
        let chat = find(&c, Transport::Udp, Some((2703, 2703)));
        assert_eq!(chat.len(), 1);
        assert_eq!(chat[0].protocol, "SMS Remote Chat");
    }

    #[test]
    fn quirk_tcp_plus_udp_is_two_records() {
        let c = builtin();
        let dcom: Vec<_> = c.records.iter().filter(|r| r.protocol == "DCOM").collect();
        assert_eq!(dcom.len(), 2);
        assert_eq!(dcom[0].transport, Transport::Tcp);
        assert_eq!(dcom[1].transport, Transport::Udp);
        assert!(dcom.iter().all(|r| r.ports == Some((1024, 65534))));
    }

    #[test]
    fn quirk_port_lists_are_several_records() {
        let c = builtin();
        let gp_rpc: Vec<_> = c
            .records
            .iter()
            .filter(|r| r.service == "Group Policy" && r.protocol == "RPC")
            .map(|r| r.ports)
            .collect();
        assert_eq!(gp_rpc, [Some((135, 135)), Some((1024, 65534))]);
        let named_pipes: Vec<_> = c
            .records
            .iter()
            .filter(|r| r.protocol == "SMB (named pipes)")
            .map(|r| r.ports)
            .collect();
        assert_eq!(named_pipes, [Some((139, 139)), Some((445, 445))]);
    }

    #[test]
    fn quirk_65536_stops_at_65535() {
        let c = builtin();
        let ad: Vec<_> = find(&c, Transport::Tcp, Some((1024, 65535)));
        assert_eq!(ad.len(), 1);
        assert_eq!(ad[0].service, "Active Directory (Local Security Authority)");
    }

    #[test]
    fn quirk_gre_esp_ah_are_ip_protocols() {
        let c = builtin();
        for t in [Transport::Gre, Transport::Esp, Transport::Ah] {
            let r = find(&c, t, None);
            assert_eq!(r.len(), 1, "{t}");
            assert_eq!(r[0].service, "Routing and Remote Access");
        }
    }

    #[test]
    fn quirk_www_table_twice_is_one_set() {
        let c = builtin();
        let www: Vec<_> = c
            .records
            .iter()
            .filter(|r| r.service == "World Wide Web Publishing Service")
            .map(|r| (r.protocol.as_str(), r.ports))
            .collect();
        assert_eq!(www, [("HTTP", Some((80, 80))), ("HTTPS", Some((443, 443)))]);
    }

    #[test]
    fn quirk_no_invented_system_names() {
        let c = builtin();
        for service in [
            "SharePoint Portal Server",
            "SQL Analysis Server",
            "SQL Server: Downlevel OLAP Client Support",
            "Systems Management Server 2.0",
            "Microsoft Exchange Server and Outlook clients",
            "Installation Bootstrap Service",
        ] {
            let recs: Vec<_> = c.records.iter().filter(|r| r.service == service).collect();
            assert!(!recs.is_empty(), "{service}");
            assert!(recs.iter().all(|r| r.system_name.is_none()), "{service}");
        }
    }

    #[test]
    fn rows_only_in_the_port_table_are_present() {
        let c = builtin();
        let k = find(&c, Transport::Tcp, Some((464, 464)));
        assert_eq!(k.len(), 1);
        assert_eq!(
            (k[0].service.as_str(), k[0].protocol.as_str()),
            ("Net Logon", "Kerberos Password V5")
        );
        assert_eq!(k[0].system_name.as_deref(), Some("Netlogon"));
        for port in [1067, 1068] {
            let r = find(&c, Transport::Tcp, Some((port, port)));
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].service, "Installation Bootstrap Service");
        }
    }
}
