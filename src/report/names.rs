//! The one vocabulary rows are named in: the key of a row (`tcp/445`), its candidate
//! services, and the name and description IPFIX exports for it. The reports and the export
//! both name rows through this module, so a row reads the same everywhere.

use super::{Service, RANGE_GUESS};
use crate::catalog::{
    format_uuid, Catalog, Match, MatchKind, PortTable, Transport, BUILTIN_NAME, INTERFACES_NAME,
    PIPES_NAME,
};

/// The key the tshark oracle and `--flows` use for a row.
pub fn row_key(transport: Transport, ports: Option<(u16, u16)>) -> String {
    match ports {
        Some((lo, hi)) if lo == hi => format!("{transport}/{lo}"),
        Some((lo, hi)) => format!("{transport}/{lo}-{hi}"),
        None => transport.to_string(),
    }
}

/// The service of the SMB server itself (LanmanServer, the seed's "file, print and
/// named-pipe sharing"): disk shares and the session's own messages are its work.
pub(super) const SMB_SERVER: &str = "Server";

/// A service of the built-in catalog by its name, with its system name.
fn builtin_service(catalog: &Catalog, name: &str) -> Service {
    Service {
        name: name.to_string(),
        system_name: catalog
            .records
            .iter()
            .find(|r| r.service == name)
            .and_then(|r| r.system_name.clone()),
        catalog: BUILTIN_NAME.to_string(),
    }
}

/// A row as IPFIX names it (`applicationName`, `applicationDescription`): the row key, its
/// match kind unless it is a certain one (`port`, `ip-protocol`), and its DCE/RPC interface
/// (the table's name, or the UUID); and the candidate services. Only catalogs and stable
/// names go in, so the same row has the same name in every run and on every sensor.
pub fn application(m: &Match, catalog: &Catalog, table: &PortTable) -> (String, String) {
    let mut name = row_key(m.transport, m.ports);
    if !matches!(m.kind, MatchKind::Port | MatchKind::IpProtocol) {
        name.push(' ');
        name.push_str(m.kind.as_str());
    }
    if let Some(pipe) = m.pipe().and_then(|id| table.pipe_name(id)) {
        name.push(' ');
        name.push_str(&pipe);
    }
    if let Some(share) = m.share_type() {
        name.push(' ');
        name.push_str(share);
    }
    if let Some(id) = m.interface() {
        let interface = catalog.interfaces.get(id as usize).map_or_else(
            || {
                table
                    .interface_uuid(id)
                    .map_or_else(String::new, |u| format_uuid(&u))
            },
            |i| i.name.clone(),
        );
        name.push(' ');
        name.push_str(&interface);
    }
    let (_, services) = candidates(m, catalog, table);
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let guess = if m.kind == MatchKind::Range {
        RANGE_GUESS
    } else {
        ""
    };
    (name, format!("{guess}{}", names.join(", ")))
}

/// The distinct protocol names and services of a row's candidate records, in catalog order.
pub fn candidates(m: &Match, catalog: &Catalog, table: &PortTable) -> (Vec<String>, Vec<Service>) {
    if m.kind == MatchKind::SmbSession {
        return (
            vec!["SMB (session)".to_string()],
            vec![builtin_service(catalog, SMB_SERVER)],
        );
    }
    if m.kind == MatchKind::SmbShare {
        let service = if m.share_type() == Some("print") {
            "Print Spooler"
        } else {
            SMB_SERVER
        };
        return (
            vec!["SMB".to_string()],
            vec![builtin_service(catalog, service)],
        );
    }
    if let Some(pipe) = m.pipe() {
        // The interface bound over the pipe names the service; else the pipe table does.
        if let Some(i) = m
            .interface()
            .and_then(|id| catalog.interfaces.get(id as usize))
        {
            return (
                vec![i.name.clone()],
                vec![Service {
                    name: i.service.clone(),
                    system_name: i.system_name.clone(),
                    catalog: INTERFACES_NAME.to_string(),
                }],
            );
        }
        return match catalog.pipes.get(pipe as usize) {
            Some(p) => (
                vec!["SMB (named pipes)".to_string()],
                vec![Service {
                    name: p.service.clone(),
                    system_name: p.system_name.clone(),
                    catalog: PIPES_NAME.to_string(),
                }],
            ),
            None => (vec!["SMB (named pipes)".to_string()], Vec::new()),
        };
    }
    if let Some(id) = m.interface() {
        return match catalog.interfaces.get(id as usize) {
            Some(i) => (
                vec![i.name.clone()],
                vec![Service {
                    name: i.service.clone(),
                    system_name: i.system_name.clone(),
                    catalog: INTERFACES_NAME.to_string(),
                }],
            ),
            None => (Vec::new(), Vec::new()),
        };
    }
    let mut protocols: Vec<String> = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    for &i in table.records(m.set) {
        let Some(r) = catalog.records.get(i as usize) else {
            continue;
        };
        if !protocols.contains(&r.protocol) {
            protocols.push(r.protocol.clone());
        }
        let service = Service {
            name: r.service.clone(),
            system_name: r.system_name.clone(),
            catalog: catalog.source_name(r).to_string(),
        };
        // A service both built-in layers list (a seed range and its Windows Server 2008
        // counterpart) is one candidate, named by the first layer that lists it.
        if !services.iter().any(|s| s.name == service.name) {
            services.push(service);
        }
    }
    (protocols, services)
}
