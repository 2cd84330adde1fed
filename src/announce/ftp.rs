//! FTP (RFC 959, RFC 2428) and TFTP (RFC 1350) announcements of the next connection.
//!
//! The FTP control connection says where the data connection will go: the server's
//! `227` (PASV) and `229` (EPSV) replies name the port it listens on; the client's `PORT`
//! and `EPRT` commands name the port the client listens on. Addresses in them are not
//! used: the data connection is expected between the control connection's two hosts, which
//! stays right behind NAT (as most clients do, e.g. curl's `--ftp-skip-pasv-ip`).

/// The data port a server reply announces (`227 ... (h1,h2,h3,h4,p1,p2)`, or
/// `229 ... (|||port|)`), from the first lines of a control-connection payload.
pub fn server_reply(payload: &[u8]) -> Option<u16> {
    lines(payload).find_map(|line| {
        if let Some(rest) = line.strip_prefix(b"227") {
            // RFC 1123 4.1.2.6: the numbers may come without parentheses; take the first
            // run of six comma-separated numbers after the code.
            let start = rest.iter().position(u8::is_ascii_digit)?;
            host_port(&rest[start..])
        } else if let Some(rest) = line.strip_prefix(b"229") {
            let open = rest.iter().position(|&b| b == b'(')?;
            extended(&rest[open + 1..])
        } else {
            None
        }
    })
}

/// The data port a client command announces (`PORT h1,h2,h3,h4,p1,p2` or
/// `EPRT |1|addr|port|`).
pub fn client_command(payload: &[u8]) -> Option<u16> {
    lines(payload).find_map(|line| {
        let (verb, rest) = line.split_at(line.len().min(5));
        if verb.eq_ignore_ascii_case(b"PORT ") {
            host_port(rest)
        } else if verb.eq_ignore_ascii_case(b"EPRT ") {
            // |proto|address|port| with any delimiter.
            let delim = *rest.first()?;
            let port = rest.split(|&b| b == delim).nth(3)?;
            number(port)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
        } else {
            None
        }
    })
}

/// Whether a UDP payload to port 69 is a read or write request: opcode 1 or 2, then a
/// NUL-terminated file name and mode.
pub fn tftp_request(payload: &[u8]) -> bool {
    match payload {
        [0, 1 | 2, rest @ ..] => {
            let rest = &rest[..rest.len().min(CONTROL_BYTES)];
            let mut parts = rest.split(|&b| b == 0);
            matches!((parts.next(), parts.next()), (Some(name), Some(mode))
                if !name.is_empty() && !mode.is_empty() && rest.iter().filter(|&&b| b == 0).count() >= 2)
        }
        _ => false,
    }
}

/// Control messages are short: only the first bytes of a segment are read.
const CONTROL_BYTES: usize = 512;

/// At most the first four lines of the first [`CONTROL_BYTES`] (a segment may hold several
/// replies); nothing when the segment does not start like a reply or a command.
fn lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let head = match payload.first() {
        Some(b) if b.is_ascii_alphanumeric() => &payload[..payload.len().min(CONTROL_BYTES)],
        _ => &[],
    };
    head.split(|&b| b == b'\n')
        .take(4)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959): the port is `p1 * 256 + p2`.
fn host_port(text: &[u8]) -> Option<u16> {
    let mut fields = text.splitn(6, |&b| b == b',');
    let mut numbers = [0u32; 6];
    for n in &mut numbers {
        let f = fields.next()?;
        // The last field ends at the first non-digit (`)` or `.`).
        let digits = f.iter().take_while(|b| b.is_ascii_digit()).count();
        *n = number(f.get(..digits)?)?;
        if *n > 255 {
            return None;
        }
    }
    u16::try_from(numbers[4] * 256 + numbers[5])
        .ok()
        .filter(|&p| p != 0)
}

/// `|||port|)` with any delimiter (RFC 2428 section 3).
fn extended(text: &[u8]) -> Option<u16> {
    let delim = *text.first()?;
    number(text.split(|&b| b == delim).nth(3)?)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
}

fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_replies() {
        assert_eq!(
            server_reply(b"227 Entering Passive Mode (192,168,1,2,195,80).\r\n"),
            Some(195 * 256 + 80)
        );
        assert_eq!(
            server_reply(b"227 =10,0,0,1,4,1\r\n"),
            Some(1025),
            "RFC 1123 form"
        );
        assert_eq!(
            server_reply(b"229 Entering Extended Passive Mode (|||6446|)\r\n"),
            Some(6446)
        );
        assert_eq!(
            server_reply(b"150 Opening data connection\r\n226 Done\r\n"),
            None
        );
        assert_eq!(server_reply(b"227 (1,2,3,4,999,1)\r\n"), None);
        assert_eq!(server_reply(b"227 (1,2,3,4,5"), None);
    }

    #[test]
    fn active_commands() {
        assert_eq!(client_command(b"PORT 10,0,0,1,7,208\r\n"), Some(2000));
        assert_eq!(client_command(b"port 10,0,0,1,7,208\r\n"), Some(2000));
        assert_eq!(
            client_command(b"EPRT |2|1080::8:800:200C:417A|5282|\r\n"),
            Some(5282)
        );
        assert_eq!(client_command(b"RETR file\r\n"), None);
        assert_eq!(client_command(b"PORT"), None);
    }

    #[test]
    fn tftp_requests() {
        assert!(tftp_request(b"\x00\x01rfc1350.txt\x00octet\x00"));
        assert!(tftp_request(b"\x00\x02up.bin\x00netascii\x00"));
        assert!(!tftp_request(b"\x00\x03\x00\x01data"));
        assert!(!tftp_request(b"\x00\x01name-without-mode"));
        assert!(!tftp_request(b""));
    }
}
