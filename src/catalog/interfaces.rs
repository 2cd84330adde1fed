//! The table of well-known DCE/RPC interfaces (`catalog/rpc-interfaces.toml`): which Windows
//! service owns each interface UUID, for flows the endpoint mapper announced.

use super::load::{Lines, Problem};
use super::Catalog;
use serde::Deserialize;
use toml::Spanned;

/// The interface table, compiled into the binary.
pub const INTERFACES_TEXT: &str = include_str!("../../catalog/rpc-interfaces.toml");

/// The name the interface table goes by where a row says which table named its service.
pub const INTERFACES_NAME: &str = "rpc-interfaces";

/// A DCE/RPC interface and the Windows service that owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The interface UUID in its string order (`e3514235-4b06-...` is `[0xe3, 0x51, ...]`).
    pub uuid: [u8; 16],
    pub name: String,
    pub service: String,
    pub system_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    interface: Vec<Spanned<RawInterface>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    uuid: String,
    name: String,
    service: String,
    system_name: Option<String>,
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower or upper case).
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A UUID between string order and the little-endian order NDR sends it in: its first
/// three fields (4, 2 and 2 bytes) reversed. Its own inverse.
pub fn swap_uuid_fields(mut u: [u8; 16]) -> [u8; 16] {
    u[..4].reverse();
    u[4..6].reverse();
    u[6..8].reverse();
    u
}

/// `e3514235-4b06-11d1-ab04-00c04fc2dcd2`.
/// One allocation: IPFIX export names thousands of rows by their interfaces.
pub fn format_uuid(u: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Parses an interface table; a service the catalog lists takes its system name from there.
///
/// # Errors
/// Every problem found, with its line.
pub fn parse_interfaces(text: &str, catalog: &Catalog) -> Result<Vec<Interface>, Vec<Problem>> {
    let lines = Lines::new(text);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map_or(1, |s| lines.of(s.start)),
            message: e.message().to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let services = catalog.services();
    let mut out: Vec<Interface> = Vec::new();
    for entry in raw.interface {
        let line = lines.of(entry.span().start);
        let r = entry.into_inner();
        let Some(uuid) = parse_uuid(&r.uuid) else {
            problems.push(Problem {
                line,
                message: format!("`{}` is not a UUID", r.uuid),
            });
            continue;
        };
        if out.iter().any(|i| i.uuid == uuid) {
            problems.push(Problem {
                line,
                message: format!("interface {} is listed twice", r.uuid),
            });
            continue;
        }
        if r.name.trim().is_empty() || r.service.trim().is_empty() {
            problems.push(Problem {
                line,
                message: "`name` and `service` must not be empty".to_string(),
            });
            continue;
        }
        let listed = services.get(r.service.as_str());
        let system_name = match (listed, r.system_name) {
            (Some(_), Some(_)) => {
                problems.push(Problem {
                    line,
                    message: format!(
                        "`system_name` is for services the catalog lacks; the catalog lists {:?}",
                        r.service
                    ),
                });
                continue;
            }
            (Some(system_name), None) => system_name.map(str::to_string),
            (None, given) => given,
        };
        out.push(Interface {
            uuid,
            name: r.name,
            service: r.service,
            system_name,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_parses_and_names_catalog_services() {
        let c = Catalog::builtin().unwrap();
        let drsuapi = parse_uuid("e3514235-4b06-11d1-ab04-00c04fc2dcd2").unwrap();
        let i = c.interfaces.iter().find(|i| i.uuid == drsuapi).unwrap();
        assert_eq!(i.service, "Active Directory (Local Security Authority)");
        assert_eq!(i.system_name.as_deref(), Some("LSASS"));
        assert_eq!(format_uuid(&i.uuid), "e3514235-4b06-11d1-ab04-00c04fc2dcd2");
        // The owners the seed catalog lacks, which therefore carry their own system names.
        let mut outside: Vec<&str> = c
            .interfaces
            .iter()
            .filter(|i| !c.records.iter().any(|r| r.service == i.service))
            .map(|i| {
                assert!(i.system_name.is_some(), "{} has no system name", i.service);
                i.service.as_str()
            })
            .collect();
        outside.sort_unstable();
        outside.dedup();
        assert_eq!(
            outside,
            [
                "Background Intelligent Transfer Service",
                "COM+ Event System",
                "Cryptographic Services",
                "DCOM object exporter (any process)",
                "DFS Replication",
                "Distributed Link Tracking Client",
                "Encrypting File System (EFS)",
                "File Server Resource Manager",
                "File Server VSS Agent Service",
                "IIS Admin Service",
                "IPsec Policy Agent",
                "Local Session Manager",
                "Logical Disk Manager Administrative Service",
                "Microsoft Key Distribution Service",
                "Network DDE",
                "Online Responder Service",
                "Plug and Play",
                "Protected Storage",
                "Remote Access Connection Manager",
                "Remote Desktop Configuration",
                "Remote Desktop Gateway",
                "Remote Registry",
                "Removable Storage",
                "Secondary Logon",
                "Service Control Manager",
                "Software Protection",
                "Task Scheduler",
                "Telephony",
                "Virtual Disk",
                "Volume Shadow Copy",
                "WebClient",
                "Windows Audio",
                "Windows Deployment Services Server",
                "Windows Firewall",
                "Windows Management Instrumentation",
                "Windows Start-Up Application",
                "Windows System Resource Manager",
                "Wireless Zero Configuration",
                "Workstation",
            ]
        );
        assert_eq!(c.interfaces.len(), 308);
    }

    #[test]
    fn the_builtin_table_keeps_its_own_rules() {
        let c = Catalog::builtin().unwrap();
        // UUIDs are written in lower case, as `format_uuid` prints them.
        let written: Vec<&str> = INTERFACES_TEXT
            .lines()
            .filter_map(|l| l.strip_prefix("uuid = \""))
            .map(|l| l.trim_end_matches('"'))
            .collect();
        let formatted: Vec<String> = c.interfaces.iter().map(|i| format_uuid(&i.uuid)).collect();
        assert_eq!(written, formatted);
        // Names are unique, so the pipe table can refer to an interface by its name.
        let mut names: Vec<&str> = c.interfaces.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "an interface name is used twice");
        // 5a7b91f8 is msgsvcsend ([MS-MSRP]); msgsvc is 17fdd703.
        let send = parse_uuid("5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc").unwrap();
        let send = c.interfaces.iter().find(|i| i.uuid == send).unwrap();
        assert_eq!(
            (send.name.as_str(), send.service.as_str()),
            ("MSGSVCSEND", "Messenger")
        );
        let scm = parse_uuid("367abb81-9844-35f1-ad32-98f038001003").unwrap();
        let scm = c.interfaces.iter().find(|i| i.uuid == scm).unwrap();
        assert_eq!(
            (
                scm.name.as_str(),
                scm.service.as_str(),
                scm.system_name.as_deref()
            ),
            ("SVCCTL", "Service Control Manager", Some("services.exe"))
        );
    }

    #[test]
    fn problems_have_lines() {
        let c = Catalog::builtin().unwrap();
        let text = "[[interface]]\nuuid = \"nope\"\nname = \"x\"\nservice = \"y\"\n\n[[interface]]\nuuid = \"e3514235-4b06-11d1-ab04-00c04fc2dcd2\"\nname = \"x\"\nservice = \"Server\"\nsystem_name = \"z\"\n";
        let problems = parse_interfaces(text, &c).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].line, 1);
        assert_eq!(problems[0].message, "`nope` is not a UUID");
        assert_eq!(problems[1].line, 6);
        assert!(parse_interfaces("[[interface]]\nuuid = 1\n", &c).is_err());
    }
}
