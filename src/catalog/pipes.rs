//! The table of well-known SMB named pipes (`catalog/rpc-pipes.toml`): which Windows service
//! listens on each pipe, and which interfaces of the interface table are bound over it.

use super::load::{Lines, Problem};
use super::Catalog;
use serde::Deserialize;
use toml::Spanned;

/// The pipe table, compiled into the binary.
pub const PIPES_TEXT: &str = include_str!("../../catalog/rpc-pipes.toml");

/// The name the pipe table goes by where a row says which table named its service.
pub const PIPES_NAME: &str = "rpc-pipes";

/// An SMB named pipe and the Windows service that listens on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipe {
    /// Lower case, without the `\pipe\` prefix (`samr`).
    pub name: String,
    pub service: String,
    pub system_name: Option<String>,
    /// Names of interfaces in the interface table commonly bound over the pipe.
    pub interfaces: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    pipe: Vec<RawPipe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipe {
    name: Spanned<String>,
    service: Spanned<String>,
    system_name: Option<Spanned<String>>,
    #[serde(default)]
    interfaces: Vec<Spanned<String>>,
}

/// What is wrong with a pipe name, if anything.
fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("pipe name must not be empty".to_string())
    } else if name.contains(['\\', '/']) {
        Some(format!(
            "pipe name `{name}` must not contain `\\` or `/` (leave out the \\pipe\\ prefix)"
        ))
    } else if name.chars().any(char::is_uppercase) {
        Some(format!("pipe name `{name}` must be lower case"))
    } else {
        None
    }
}

/// Parses a pipe table against a catalog whose interface table is already loaded: a service
/// the catalog lists takes its system name from there, and every interface a pipe names must
/// be in the interface table.
///
/// # Errors
/// Every problem found, each with the line of the value it is about.
pub fn parse_pipes(text: &str, catalog: &Catalog) -> Result<Vec<Pipe>, Vec<Problem>> {
    let lines = Lines::new(text);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map_or(1, |s| lines.of(s.start)),
            message: e.message().to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let services = catalog.services();
    let mut out: Vec<Pipe> = Vec::new();
    // Where each accepted name was first listed, to say so for a repeat.
    let mut seen: Vec<(String, usize)> = Vec::new();
    let at = |span: &std::ops::Range<usize>| lines.of(span.start);
    for r in raw.pipe {
        let before = problems.len();

        let name_line = at(&r.name.span());
        let name = r.name.into_inner();
        if let Some(message) = name_problem(&name) {
            problems.push(Problem {
                line: name_line,
                message,
            });
        } else if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            problems.push(Problem {
                line: name_line,
                message: format!("pipe `{name}` is listed twice (first at line {first})"),
            });
        } else {
            seen.push((name.clone(), name_line));
        }

        let service_line = at(&r.service.span());
        let service = r.service.into_inner();
        let listed = services.get(service.as_str());
        if service.trim().is_empty() {
            problems.push(Problem {
                line: service_line,
                message: "`service` must not be empty".to_string(),
            });
        }
        let system_name = match (listed, r.system_name) {
            (Some(_), Some(given)) => {
                problems.push(Problem {
                    line: at(&given.span()),
                    message: format!(
                        "`system_name` is for services the catalog lacks; the catalog lists {service:?}"
                    ),
                });
                None
            }
            (Some(system_name), None) => system_name.map(str::to_string),
            (None, given) => given.map(Spanned::into_inner),
        };

        let mut interfaces = Vec::new();
        for i in r.interfaces {
            let line = at(&i.span());
            let i = i.into_inner();
            if catalog.interfaces.iter().any(|known| known.name == i) {
                interfaces.push(i);
            } else {
                problems.push(Problem {
                    line,
                    message: format!("no interface named {i:?} in rpc-interfaces.toml"),
                });
            }
        }

        if problems.len() == before {
            out.push(Pipe {
                name,
                service,
                system_name,
                interfaces,
            });
        }
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

    fn problems(text: &str) -> Vec<(usize, String)> {
        let c = Catalog::builtin().unwrap();
        parse_pipes(text, &c)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn the_builtin_table_parses_and_names_catalog_services() {
        let c = Catalog::builtin().unwrap();
        assert_eq!(c.pipes.len(), 45);
        let samr = c.pipes.iter().find(|p| p.name == "samr").unwrap();
        assert_eq!(samr.service, "Active Directory (Local Security Authority)");
        assert_eq!(samr.system_name.as_deref(), Some("LSASS"));
        assert_eq!(samr.interfaces, ["SAMR"]);
        for p in &c.pipes {
            let listed = c.records.iter().any(|r| r.service == p.service);
            assert!(
                listed || p.system_name.is_some(),
                "{}: {} is not a catalog service and has no system name",
                p.name,
                p.service
            );
            assert_eq!(name_problem(&p.name), None);
            for i in &p.interfaces {
                assert!(c.interfaces.iter().any(|k| k.name == *i), "{}: {i}", p.name);
            }
        }
        // The pipes the well-known interfaces are reached over.
        let over = |pipe: &str| {
            c.pipes
                .iter()
                .find(|p| p.name == pipe)
                .map(|p| (p.service.as_str(), p.interfaces.clone()))
                .unwrap()
        };
        assert_eq!(
            over("svcctl"),
            ("Service Control Manager", vec!["SVCCTL".to_string()])
        );
        assert_eq!(
            over("atsvc"),
            (
                "Task Scheduler",
                vec![
                    "ATSVC".to_string(),
                    "SASEC".to_string(),
                    "ITaskSchedulerService".to_string()
                ]
            )
        );
        assert_eq!(over("lanman"), ("Server", vec![]));
        // No pipe goes by drsuapi: DRSUAPI is reached over TCP or the LSA's pipes.
        assert!(c.pipes.iter().all(|p| p.name != "drsuapi"));
    }

    #[test]
    fn a_valid_table_parses() {
        let c = Catalog::builtin().unwrap();
        let text = "[[pipe]]\nname = \"dav rpc service\"\nservice = \"WebClient\"\nsystem_name = \"WebClient\"\ninterfaces = [\"DAV RPC SERVICE\"]\n\n[[pipe]]\nname = \"srvsvc\"\nservice = \"Server\"\n";
        let pipes = parse_pipes(text, &c).unwrap();
        assert_eq!(
            pipes,
            [
                Pipe {
                    name: "dav rpc service".to_string(),
                    service: "WebClient".to_string(),
                    system_name: Some("WebClient".to_string()),
                    interfaces: vec!["DAV RPC SERVICE".to_string()],
                },
                Pipe {
                    name: "srvsvc".to_string(),
                    service: "Server".to_string(),
                    system_name: Some("lanmanserver".to_string()),
                    interfaces: vec![],
                },
            ]
        );
        assert_eq!(parse_pipes("", &c).unwrap(), []);
    }

    #[test]
    fn bad_names_have_lines() {
        let text = "[[pipe]]\nname = \"\"\nservice = \"Server\"\n\n[[pipe]]\nname = \"Samr\"\nservice = \"Server\"\n\n[[pipe]]\nname = \"pipe\\\\samr\"\nservice = \"Server\"\n\n[[pipe]]\nservice = \"Server\"\nname = \"a/b\"\n";
        assert_eq!(
            problems(text),
            [
                (2, "pipe name must not be empty".to_string()),
                (6, "pipe name `Samr` must be lower case".to_string()),
                (
                    10,
                    "pipe name `pipe\\samr` must not contain `\\` or `/` (leave out the \\pipe\\ prefix)"
                        .to_string()
                ),
                (
                    15,
                    "pipe name `a/b` must not contain `\\` or `/` (leave out the \\pipe\\ prefix)"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_pipe_listed_twice_has_its_line() {
        let text = "[[pipe]]\nname = \"srvsvc\"\nservice = \"Server\"\n\n[[pipe]]\nname = \"srvsvc\"\nservice = \"Server\"\n";
        assert_eq!(
            problems(text),
            [(
                6,
                "pipe `srvsvc` is listed twice (first at line 2)".to_string()
            )]
        );
    }

    #[test]
    fn service_problems_have_lines() {
        let text = "[[pipe]]\nname = \"a\"\nservice = \" \"\n\n[[pipe]]\nname = \"b\"\nservice = \"Server\"\nsystem_name = \"srv\"\n";
        assert_eq!(
            problems(text),
            [
                (3, "`service` must not be empty".to_string()),
                (
                    8,
                    "`system_name` is for services the catalog lacks; the catalog lists \"Server\""
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn unknown_interfaces_have_lines() {
        let text = "[[pipe]]\nname = \"srvsvc\"\nservice = \"Server\"\ninterfaces = [\n  \"SRVSVC\",\n  \"srvsvc\",\n]\n";
        assert_eq!(
            problems(text),
            [(
                6,
                "no interface named \"srvsvc\" in rpc-interfaces.toml".to_string()
            )]
        );
    }

    #[test]
    fn every_problem_of_an_entry_is_reported() {
        let text = "[[pipe]]\nname = \"X\"\nservice = \"\"\ninterfaces = [\"nope\"]\n";
        assert_eq!(
            problems(text),
            [
                (2, "pipe name `X` must be lower case".to_string()),
                (3, "`service` must not be empty".to_string()),
                (
                    4,
                    "no interface named \"nope\" in rpc-interfaces.toml".to_string()
                ),
            ]
        );
    }

    #[test]
    fn syntax_and_shape_problems_have_lines() {
        assert_eq!(
            problems("[[pipe]]\nname = \"a\"\nservice = \"Server\"\nport = 1\n"),
            [(4, "unknown field `port`, expected one of `name`, `service`, `system_name`, `interfaces`".to_string())]
        );
        assert_eq!(
            problems("[[pipe]]\nname = \"a\"\n"),
            [(1, "missing field `service`".to_string())]
        );
        assert_eq!(
            problems("\n[[pipe]]\nname = \"a\"\nservice = \"Server\"\ninterfaces = \"SRVSVC\"\n"),
            [(
                5,
                "invalid type: string \"SRVSVC\", expected a sequence".to_string()
            )]
        );
        assert_eq!(problems("[[pipe]\n")[0].0, 1);
    }
}
