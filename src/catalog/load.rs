//! Strict parsing of catalog files: portscope's TOML format and the `/etc/services` format.
//!
//! Every problem is reported with its 1-based line; nothing is skipped silently.
//! Lines that are valid but carry nothing portscope can classify (an `sctp` entry in
//! `/etc/services`) are returned as notes, so the caller can say so.

use super::{Record, Transport};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use toml::Spanned;

/// The syntax of a catalog file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// portscope's own format (see `catalog/windows-services.toml`).
    Toml,
    /// `name port/proto [aliases...] [# comment]`, one entry per line.
    Services,
}

impl Format {
    /// `.toml` files are portscope's format; anything else is read as `/etc/services`.
    pub fn for_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            _ => Format::Services,
        }
    }
}

/// One problem in a catalog file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// What a valid catalog file holds.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    /// (line, what): entries read but not usable for classification.
    pub notes: Vec<(usize, String)>,
}

/// Reads and parses one catalog file, reporting every problem found.
///
/// # Errors
/// An I/O error as a single problem at line 0, or every problem in the file.
pub fn load_file(path: &Path) -> Result<Parsed, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            line: 0,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse(&text, Format::for_path(path), 0)
}

/// Parses catalog text; `source` is stored in every record.
///
/// # Errors
/// Every problem found, in line order.
pub fn parse(text: &str, format: Format, source: usize) -> Result<Parsed, Vec<Problem>> {
    let mut problems = Vec::new();
    let parsed = match format {
        Format::Toml => parse_toml(text, source, &mut problems),
        Format::Services => parse_services(text, source, &mut problems),
    };
    check_duplicates(&parsed.records, &mut problems);
    if problems.is_empty() {
        Ok(parsed)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
}

// Fields are read as loose values and checked by hand, so that a value of the wrong type
// is one problem among the others rather than the end of the parse.
#[derive(Deserialize)]
struct RawService {
    name: Option<toml::Value>,
    system_name: Option<toml::Value>,
    ports: Option<Vec<Spanned<RawRecord>>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct RawRecord {
    protocol: Option<toml::Value>,
    transport: Option<toml::Value>,
    port: Option<toml::Value>,
    range: Option<toml::Value>,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

/// A non-empty string field, or why not.
fn string_field(value: Option<toml::Value>, what: &str) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s)),
        Some(toml::Value::String(_)) => Err(format!("`{what}` is empty")),
        Some(other) => Err(format!(
            "`{what}` must be a string, not {}",
            other.type_str()
        )),
    }
}

fn integer(value: &toml::Value, what: &str) -> Result<i64, String> {
    value
        .as_integer()
        .ok_or_else(|| format!("`{what}` must be an integer, not {}", value.type_str()))
}

/// The line numbers of byte offsets in one text, by a binary search over its newlines: a
/// count from the start for every record made loading the built-in catalogs quadratic (a
/// quarter of the instructions of classifying 200,000 packets).
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub(super) fn new(text: &str) -> Lines {
        Lines(memchr::memchr_iter(b'\n', text.as_bytes()).collect())
    }

    /// The line (from 1) holding byte `offset`.
    pub(super) fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&newline| newline < offset) + 1
    }
}

fn parse_toml(text: &str, source: usize, problems: &mut Vec<Problem>) -> Parsed {
    let mut parsed = Parsed::default();
    let lines = Lines::new(text);
    let file: RawFile = match toml::from_str(text) {
        Ok(file) => file,
        Err(e) => {
            let line = e.span().map_or(1, |s| lines.of(s.start));
            let message = e.message().trim_end().replace('\n', " ");
            problems.push(Problem { line, message });
            return parsed;
        }
    };
    for service in file.service {
        let line = lines.of(service.span().start);
        let service = service.into_inner();
        let mut bad = |line, message: String| problems.push(Problem { line, message });
        for key in service.unknown.keys() {
            bad(line, format!("unknown field `{key}` in [[service]]"));
        }
        let system_name = match string_field(service.system_name, "system_name") {
            Ok(s) => s,
            Err(message) => {
                bad(line, message);
                None
            }
        };
        let name = match string_field(service.name, "name") {
            Ok(Some(name)) => name,
            Ok(None) => {
                bad(line, "[[service]] is missing `name`".to_string());
                continue;
            }
            Err(message) => {
                bad(line, message);
                continue;
            }
        };
        let Some(records) = service.ports else {
            bad(line, format!("service {name:?} is missing `ports`"));
            continue;
        };
        if records.is_empty() {
            bad(line, format!("service {name:?} has no records in `ports`"));
        }
        for raw in records {
            let line = lines.of(raw.span().start);
            match record_from_raw(raw.into_inner()) {
                Ok((protocol, transport, ports)) => parsed.records.push(Record {
                    service: name.clone(),
                    system_name: system_name.clone(),
                    protocol,
                    transport,
                    ports,
                    source,
                    line,
                }),
                Err(message) => bad(line, message),
            }
        }
    }
    parsed
}

type RecordParts = (String, Transport, Option<(u16, u16)>);

fn record_from_raw(raw: RawRecord) -> Result<RecordParts, String> {
    if let Some(key) = raw.unknown.keys().next() {
        return Err(format!("unknown field `{key}` in a record"));
    }
    let protocol = string_field(raw.protocol, "protocol")?.ok_or("record is missing `protocol`")?;
    let name = string_field(raw.transport, "transport")?.ok_or("record is missing `transport`")?;
    let transport = Transport::from_name(&name).ok_or_else(|| {
        format!("unknown transport {name:?} (expected tcp, udp, icmp, gre, esp or ah)")
    })?;
    let ports = match (raw.port, raw.range) {
        (Some(_), Some(_)) => return Err("record has both `port` and `range`".to_string()),
        (None, None) => None,
        (Some(p), None) => {
            let p = check_port(integer(&p, "port")?)?;
            Some((p, p))
        }
        (None, Some(r)) => {
            let r = r
                .as_array()
                .ok_or_else(|| format!("`range` must be [low, high], not {}", r.type_str()))?;
            let [lo, hi] = &r[..] else {
                return Err(format!(
                    "`range` needs two ports [low, high], got {}",
                    r.len()
                ));
            };
            let (lo, hi) = (
                check_port(integer(lo, "range")?)?,
                check_port(integer(hi, "range")?)?,
            );
            if lo > hi {
                return Err(format!("inverted range {lo}-{hi}"));
            }
            Some((lo, hi))
        }
    };
    match (transport.has_ports(), ports) {
        (true, None) => Err(format!("{transport} record is missing `port` or `range`")),
        (false, Some(_)) => Err(format!(
            "{transport} is an IP protocol and has no ports; remove `port`/`range`"
        )),
        _ => Ok((protocol, transport, ports)),
    }
}

fn check_port(p: i64) -> Result<u16, String> {
    match u16::try_from(p) {
        Ok(0) | Err(_) => Err(format!("port {p} is out of range (1-65535)")),
        Ok(p) => Ok(p),
    }
}

fn parse_services(text: &str, source: usize, problems: &mut Vec<Problem>) -> Parsed {
    let mut parsed = Parsed::default();
    for (i, raw_line) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw_line.split('#').next().unwrap_or("");
        let mut words = content.split_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(port_proto) = words.next() else {
            problems.push(Problem {
                line,
                message: format!("entry {name:?} has no port/protocol"),
            });
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            problems.push(Problem {
                line,
                message: format!("expected port/protocol, got {port_proto:?}"),
            });
            continue;
        };
        let checked = port
            .parse::<i64>()
            .map_err(|_| format!("port {port:?} is not a number"))
            .and_then(check_port);
        let port = match checked {
            Ok(p) => p,
            Err(message) => {
                problems.push(Problem { line, message });
                continue;
            }
        };
        let transport = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            // Valid /etc/services transports that carry no TCP or UDP port.
            "sctp" | "ddp" | "dccp" => {
                parsed.notes.push((
                    line,
                    format!("{name} {port}/{proto} ignored: not tcp or udp"),
                ));
                continue;
            }
            other => {
                problems.push(Problem {
                    line,
                    message: format!("unknown transport {other:?} (expected tcp or udp)"),
                });
                continue;
            }
        };
        parsed.records.push(Record {
            service: name.to_string(),
            system_name: None,
            protocol: name.to_string(),
            transport,
            ports: Some((port, port)),
            source,
            line,
        });
    }
    parsed
}

fn check_duplicates(records: &[Record], problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    let mut first_line = BTreeMap::new();
    for r in records {
        let key = (&r.service, &r.protocol, r.transport, r.ports);
        if seen.insert(key) {
            first_line.insert(key, r.line);
        } else {
            let ports = match r.ports {
                Some((lo, hi)) if lo == hi => format!(" {lo}"),
                Some((lo, hi)) => format!(" {lo}-{hi}"),
                None => String::new(),
            };
            problems.push(Problem {
                line: r.line,
                message: format!(
                    "duplicate record: {:?} {:?} {}{} is already at line {}",
                    r.service,
                    r.protocol,
                    r.transport,
                    ports,
                    first_line.get(&key).copied().unwrap_or(0)
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str, format: Format) -> Vec<(usize, String)> {
        match parse(text, format, 0) {
            Ok(_) => Vec::new(),
            Err(ps) => ps.into_iter().map(|p| (p.line, p.message)).collect(),
        }
    }

    const HEAD: &str = "[[service]]\nname = \"X\"\nports = [\n";

    fn one(record: &str) -> Vec<(usize, String)> {
        problems(&format!("{HEAD}  {record},\n]\n"), Format::Toml)
    }

    #[test]
    fn good_records_parse() {
        let text = format!(
            "{HEAD}  {{ protocol = \"A\", transport = \"TCP\", port = 1 }},\n  {{ protocol = \"B\", transport = \"udp\", range = [1024, 65535] }},\n  {{ protocol = \"C\", transport = \"gre\" }},\n]\n"
        );
        let p = parse(&text, Format::Toml, 3).unwrap();
        let got: Vec<_> = p
            .records
            .iter()
            .map(|r| (r.line, r.transport, r.ports, r.source))
            .collect();
        assert_eq!(
            got,
            [
                (4, Transport::Tcp, Some((1, 1)), 3),
                (5, Transport::Udp, Some((1024, 65535)), 3),
                (6, Transport::Gre, None, 3)
            ]
        );
    }

    #[test]
    fn each_kind_of_bad_record_names_its_line() {
        let cases = [
            (
                "{ protocol = \"A\", transport = \"sctp\", port = 1 }",
                "unknown transport \"sctp\" (expected tcp, udp, icmp, gre, esp or ah)",
            ),
            (
                "{ protocol = \"A\", transport = \"tcp\", port = 0 }",
                "port 0 is out of range (1-65535)",
            ),
            (
                "{ protocol = \"A\", transport = \"tcp\", port = 65536 }",
                "port 65536 is out of range (1-65535)",
            ),
            (
                "{ protocol = \"A\", transport = \"tcp\", range = [2000, 1000] }",
                "inverted range 2000-1000",
            ),
            (
                "{ protocol = \"A\", transport = \"esp\", port = 50 }",
                "esp is an IP protocol and has no ports; remove `port`/`range`",
            ),
            (
                "{ protocol = \"A\", transport = \"tcp\" }",
                "tcp record is missing `port` or `range`",
            ),
            (
                "{ transport = \"tcp\", port = 1 }",
                "record is missing `protocol`",
            ),
            (
                "{ protocol = \"A\", port = 1 }",
                "record is missing `transport`",
            ),
            (
                "{ protocol = \"A\", transport = \"tcp\", prot = 1 }",
                "unknown field `prot` in a record",
            ),
        ];
        for (record, message) in cases {
            assert_eq!(one(record), [(4, message.to_string())], "{record}");
        }
    }

    #[test]
    fn duplicates_and_several_problems_are_all_reported() {
        let text = format!(
            "{HEAD}  {{ protocol = \"A\", transport = \"tcp\", port = 1 }},\n  {{ protocol = \"A\", transport = \"tcp\", port = 0 }},\n  {{ protocol = \"A\", transport = \"tcp\", port = 1 }},\n]\n"
        );
        assert_eq!(
            problems(&text, Format::Toml),
            [
                (5, "port 0 is out of range (1-65535)".to_string()),
                (
                    6,
                    "duplicate record: \"X\" \"A\" tcp 1 is already at line 4".to_string()
                )
            ]
        );
    }

    #[test]
    fn syntax_errors_and_missing_service_fields() {
        let p = problems("[[service]\nname = 1\n", Format::Toml);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 1);
        assert_eq!(
            problems("\n[[service]]\nports = []\n", Format::Toml),
            [(2, "[[service]] is missing `name`".to_string())]
        );
        assert_eq!(
            problems("[[service]]\nname = \"Y\"\n", Format::Toml),
            [(1, "service \"Y\" is missing `ports`".to_string())]
        );
    }

    #[test]
    fn wrong_types_are_problems_among_the_others() {
        let text = "[[service]]\nname = \"X\"\nsystem_name = 3\nports = [\n  { protocol = \"A\", transport = \"tcp\", port = \"445\" },\n  { protocol = \"A\", transport = \"tcp\", port = 0 },\n  { protocol = 5, transport = \"tcp\", port = 1 },\n  { protocol = \"A\", transport = \"tcp\", range = 7 },\n]\n[[service]]\nname = \"Y\"\nports = []\n";
        assert_eq!(
            problems(text, Format::Toml),
            [
                (1, "`system_name` must be a string, not integer".to_string()),
                (5, "`port` must be an integer, not string".to_string()),
                (6, "port 0 is out of range (1-65535)".to_string()),
                (7, "`protocol` must be a string, not integer".to_string()),
                (8, "`range` must be [low, high], not integer".to_string()),
                (10, "service \"Y\" has no records in `ports`".to_string()),
            ]
        );
    }

    #[test]
    fn etc_services_format() {
        let text =
            "# comment\nhttp\t\t80/tcp\twww # WorldWideWeb\n\nsnmp 161/udp\nsctp-thing 9/sctp\n";
        let p = parse(text, Format::Services, 1).unwrap();
        let got: Vec<_> = p
            .records
            .iter()
            .map(|r| (r.line, r.service.as_str(), r.transport, r.ports))
            .collect();
        assert_eq!(
            got,
            [
                (2, "http", Transport::Tcp, Some((80, 80))),
                (4, "snmp", Transport::Udp, Some((161, 161)))
            ]
        );
        assert_eq!(
            p.notes,
            [(5, "sctp-thing 9/sctp ignored: not tcp or udp".to_string())]
        );
    }

    #[test]
    fn etc_services_problems() {
        let text = "a 0/tcp\nb 70000/udp\nc x/tcp\nd 5/foo\ne\nf 80\na 1/tcp\na 1/tcp\n";
        assert_eq!(
            problems(text, Format::Services),
            [
                (1, "port 0 is out of range (1-65535)".to_string()),
                (2, "port 70000 is out of range (1-65535)".to_string()),
                (3, "port \"x\" is not a number".to_string()),
                (
                    4,
                    "unknown transport \"foo\" (expected tcp or udp)".to_string()
                ),
                (5, "entry \"e\" has no port/protocol".to_string()),
                (6, "expected port/protocol, got \"80\"".to_string()),
                (
                    8,
                    "duplicate record: \"a\" \"a\" tcp 1 is already at line 7".to_string()
                ),
            ]
        );
    }
}
