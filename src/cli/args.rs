//! The command line, as the user types it (clap derive). Turning it into configuration for
//! the library happens in `cli/mod.rs`; nothing past `cli/` sees these types.

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Classify packet captures by the Windows services whose ports they use.
#[derive(Debug, Parser)]
#[command(name = "portscope", version, about, max_term_width = 100)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify the traffic in capture files and print per-service summaries.
    Classify(ClassifyArgs),
    /// Add classify JSON reports (of separate files or machines) into one report.
    Merge(MergeArgs),
    /// Show, search and check service catalogs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Capture live on an interface (e.g. a mirror port) and report every interval.
    Live(LiveArgs),
    /// List the interfaces portscope can capture on.
    Interfaces,
    /// Write a synthetic capture of the catalog's services (the same bytes for the same seed).
    Gen(GenArgs),
    /// Measure decode and classification on packets held in memory, at several thread counts.
    Bench(BenchArgs),
    /// Print a shell completion script (bash, zsh or fish) on standard output.
    Completions {
        #[arg(value_enum)]
        shell: ShellArg,
    },
    /// Print a man page (roff) on standard output: the top page, or a subcommand's.
    Man {
        /// The subcommand whose page to print (its options, as `--help` lists them).
        subcommand: Option<String>,
        /// Write every page (portscope.1, portscope-classify.1, ...) into DIR instead, e.g.
        /// /usr/local/share/man/man1.
        #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
        dir: Option<PathBuf>,
    },
}

/// The shells `portscope completions` writes for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, ClapArgs)]
pub struct BenchArgs {
    /// Generate this many packets of the synthetic mix (about 25 per flow).
    #[arg(long, default_value_t = 2_000_000, conflicts_with = "file")]
    pub packets: u64,
    /// Measure the packets of this capture instead.
    #[arg(long, value_name = "FILE")]
    pub file: Option<String>,
    /// Worker thread counts to measure, e.g. 1,2,4.
    #[arg(long = "threads", value_name = "N,N,...", default_value = "1,2", value_parser = thread_list)]
    pub threads: std::vec::Vec<usize>,
    /// Runs per thread count; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// 64-byte packets.
    #[arg(long)]
    pub small: bool,
    /// Only read this classic pcap file in 1 MiB blocks and walk its record headers, with no
    /// decoding: the limit a reader of the file can reach (what `compare.sh` calls the walk).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "packets"])]
    pub walk: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReaderArg {
    Auto,
    Libpcap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
    /// JSON, one document a line (NDJSON): a report on one line, a list one item a line.
    Ndjson,
    Csv,
}

/// `live`'s formats: a table, or JSON lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LiveFormat {
    Table,
    #[value(alias = "ndjson")]
    Json,
}

/// `classify`'s formats: the others', and a page to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClassifyFormat {
    Table,
    Json,
    /// The report as JSON on one line (NDJSON); with --interval the same lines as json.
    Ndjson,
    Csv,
    /// One self-contained HTML page (charts as inline SVG, no script, nothing fetched);
    /// needs `-o` when standard output is a terminal.
    Html,
}

/// Options of every subcommand that classifies.
#[derive(Debug, ClapArgs)]
pub struct CatalogOpts {
    /// An extra catalog, layered after the built-in one (repeatable): portscope's TOML format
    /// for `.toml` files, the /etc/services format otherwise.
    #[arg(long = "catalog", value_name = "FILE")]
    pub catalogs: Vec<PathBuf>,
}

/// How flows are tracked: shared by every subcommand that classifies.
#[derive(Debug, ClapArgs)]
pub struct FlowOpts {
    /// Decode and classify on N worker threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Bound on open flows, split evenly over 64 shards; a full shard ends its longest-idle
    /// eighth (their counts are kept).
    #[arg(long, value_name = "N", default_value_t = portscope::worker::DEFAULT_MAX_FLOWS)]
    pub max_flows: usize,
    /// Idle timeout of TCP flows, in seconds of capture time.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub tcp_timeout: u64,
    /// Idle timeout of UDP flows, in seconds of capture time.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub udp_timeout: u64,
    /// Idle timeout of ICMP and other flows, in seconds of capture time.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub other_timeout: u64,
    /// Classify by the port table alone: do not follow the endpoint mapper's, FTP's and
    /// TFTP's announcements of dynamic ports (flows inside tunnels are still reported).
    #[arg(long)]
    pub ports_only: bool,
    /// Decrypt the SMB3 sessions this file has keys for (repeatable), in Wireshark's
    /// smb2_seskey_list format: one session a line, SESSION_ID,SESSION_KEY,S2C_KEY,C2S_KEY
    /// in hex as the wire holds them. The two decryption keys may be "": they then come
    /// from the session key (16 bytes, or Kerberos's 32), for SMB 3.1.1 through the
    /// session's NEGOTIATE and SESSION_SETUP messages, which the capture must hold. An
    /// encrypted message is decrypted (its tag checked) and read like one in the clear;
    /// one longer than its segment is placed by its header. Keys are never printed
    #[arg(long = "smb-keys", value_name = "FILE")]
    pub smb_keys: Vec<PathBuf>,
}

/// IPFIX export of finished flows: shared by every subcommand that classifies. The options
/// that shape an export are refused without a collector or a file to export to, rather
/// than ignored.
#[derive(Debug, ClapArgs)]
#[command(group = clap::ArgGroup::new("ipfix_out").args(["ipfix", "ipfix_file"]).multiple(true))]
pub struct ExportOpts {
    /// Export every flow to this IPFIX collector (repeatable): udp://HOST:PORT (the
    /// default scheme) or tcp://HOST:PORT.
    #[arg(long = "ipfix", value_name = "URL")]
    pub ipfix: Vec<String>,
    /// Also write the flows as an IPFIX file (RFC 5655).
    #[arg(long, value_name = "FILE")]
    pub ipfix_file: Option<PathBuf>,
    /// The largest UDP message to send, in bytes (512 to 65535).
    #[arg(long, requires = "ipfix_out", value_name = "BYTES", default_value_t = portscope::export::DEFAULT_MTU)]
    pub ipfix_mtu: usize,
    /// The most data records a second to send over UDP (0: no pacing). UDP has no flow
    /// control: a collector that falls behind loses what its receive buffer cannot hold.
    #[arg(long, requires = "ipfix_out", value_name = "RECORDS", default_value_t = portscope::export::DEFAULT_RATE)]
    pub ipfix_rate: u64,
    /// The observation domain ID in every IPFIX message (of outer flows).
    #[arg(long, requires = "ipfix_out", value_name = "ID", default_value_t = 1)]
    pub observation_domain: u32,
    /// Also export the flows inside tunnels, in an observation domain of their own, so that
    /// a collector's totals of the outer domain still equal portscope's.
    #[arg(long, requires = "ipfix_out")]
    pub ipfix_inner: bool,
    /// The observation domain of the flows inside tunnels (default: the outer one + 1).
    #[arg(long, value_name = "ID", requires = "ipfix_inner")]
    pub inner_observation_domain: Option<u32>,
    /// A flow open longer than this (in capture time) since its start or its last record
    /// is exported again with what it carried since (delta counts, flowEndReason 2), and
    /// stays open; 0: flows are exported when they end. Default: 60 for live, 0 for
    /// classify.
    #[arg(long, requires = "ipfix_out", value_name = "SECS")]
    pub active_timeout: Option<u64>,
}

#[derive(Debug, ClapArgs)]
pub struct ClassifyArgs {
    /// Capture files (pcap or pcapng) or directories of them; `-` reads standard input. As
    /// with tcpdump, a filter may follow the captures instead of `-f`
    /// (`portscope classify F tcp port 445`).
    #[arg(required_unless_present = "read", value_name = "CAPTURE")]
    pub captures: Vec<String>,
    /// A capture to read, as tcpdump's and tshark's -r (repeatable; read before the
    /// CAPTURE arguments).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<String>,
    #[arg(long, value_enum, default_value_t = ClassifyFormat::Table)]
    pub format: ClassifyFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write one JSON line per flow to FILE; `-` writes them on standard output, and
    /// the report then goes to standard error unless -o names a file for it.
    #[arg(long, value_name = "FILE")]
    pub flows: Option<PathBuf>,
    #[command(flatten)]
    pub flow: FlowOpts,
    #[command(flatten)]
    pub export: ExportOpts,
    /// Print timings and rates to standard error.
    #[arg(long)]
    pub stats: bool,
    /// Also list the server hosts and the rows of the flows each served (for TCP the side
    /// that answered the handshake, otherwise the endpoint on the row's port).
    #[arg(long)]
    pub servers: bool,
    /// List, under each row, the N host pairs with most bytes.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Also report every SECS seconds of capture time, from the first packet (empty
    /// intervals included, up to 1,000 in a row; the rest of a longer gap is one interval):
    /// JSON lines as `live --format json` writes them, or a table line per interval per top
    /// row.
    #[arg(long, value_name = "SECS")]
    pub interval: Option<f64>,
    /// Keep only the packets this BPF filter expression passes, as tcpdump takes it (the
    /// others are counted apart: `filtered` in JSON, a note in the table).
    #[arg(short = 'f', long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Interleave the packets of all inputs (and of every file under a directory) by
    /// capture time, ties in input order, as mergecap does: captures of two sensors whose
    /// times overlap. Without it, inputs are read one after the other.
    #[arg(long)]
    pub merge: bool,
    /// Stop after N packets (over all inputs, like tcpdump's -c); the report covers them.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
    /// `auto` reads classic pcap and pcapng (plain or compressed) with portscope's own block
    /// readers and other formats through libpcap;
    /// `libpcap` reads everything through libpcap, and portscope's own readers what libpcap
    /// refuses (a pcapng file whose interfaces differ), with a note on standard error: the
    /// two give the same report.
    #[arg(long, value_enum, default_value_t = ReaderArg::Auto)]
    pub reader: ReaderArg,
    #[command(flatten)]
    pub catalog: CatalogOpts,
}

#[derive(Debug, ClapArgs)]
pub struct MergeArgs {
    /// Reports written by `classify --format json` (or by `merge`); `-` reads standard input.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// The merged report's format: JSON, as classify writes it, by default.
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    pub format: FormatArg,
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, ClapArgs)]
pub struct LiveArgs {
    /// The interface to capture on (see `portscope interfaces`).
    #[arg(short, long, value_name = "IFACE")]
    pub interface: String,
    /// A BPF filter expression, as tcpdump takes it.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Bytes kept of each packet, as tcpdump's -s: the default, libpcap's own (262,144),
    /// keeps whole offloaded segments, so SMB and DCE/RPC names are read as offline; volumes
    /// always count whole packets.
    #[arg(long, default_value_t = 262_144)]
    pub snaplen: i32,
    /// The kernel capture buffer, in bytes, as tcpdump's -B (in KiB there). The default,
    /// 64 MiB, holds a burst of a quarter second at 2 Gbit/s of whole frames; libpcap's
    /// own 2 MiB drops most of a replayed burst at the default snapshot length.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub buffer_size: i32,
    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Seconds between reports.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub interval: f64,
    /// `table` redraws a table in place on a terminal; `json` (or `ndjson`) writes one JSON
    /// document per line: one per interval, then a last one with `"final": true`.
    #[arg(long, value_enum, default_value_t = LiveFormat::Table)]
    pub format: LiveFormat,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Also write every captured packet to this pcap file; `-` writes them on standard
    /// output, and the reports then go to standard error
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// At the end, print what each IPFIX collector was sent to standard error.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub flow: FlowOpts,
    #[command(flatten)]
    pub export: ExportOpts,
    #[command(flatten)]
    pub catalog: CatalogOpts,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Print every catalog record.
    Dump {
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
        #[command(flatten)]
        catalog: CatalogOpts,
    },
    /// Show every candidate service for a port or protocol: 445/tcp, udp/137, gre, tcp/50000.
    Lookup {
        /// PORT/TRANSPORT, TRANSPORT/PORT, a bare PORT (TCP and UDP), or icmp, gre, esp, ah.
        query: String,
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
        #[command(flatten)]
        catalog: CatalogOpts,
    },
    /// Print the DCE/RPC interfaces the endpoint mapper's answers are matched against, with
    /// the Windows service that owns each.
    Interfaces {
        #[arg(long, value_enum, default_value_t = FormatArg::Table)]
        format: FormatArg,
    },
    /// Validate catalog files; report every problem with its line; exit 0 only when clean.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, ClapArgs)]
pub struct GenArgs {
    /// The capture file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pub packets: u64,
    #[arg(long, default_value_t = 500)]
    pub flows: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Every packet 64 bytes on the wire (for packet-rate benchmarks).
    #[arg(long)]
    pub small: bool,
}

/// Parses `1,2,4`.
fn thread_list(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|t| t.trim().parse::<usize>().map_err(|e| format!("{t:?}: {e}")))
        .collect()
}
