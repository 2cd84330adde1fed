//! SMB messages with their session header, for tests and the fixture generator: just the
//! fields portscope reads, the rest zero.

use super::field;

/// A session message around `smb`.
pub fn session(smb: &[u8]) -> Vec<u8> {
    let len = u32::try_from(smb.len()).unwrap_or(0x00ff_ffff);
    let mut out = vec![0, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    out.extend_from_slice(smb);
    out
}

/// An SMB2 header; `tree` `None` writes an async header.
pub fn smb2(command: u16, response: bool, message: u64, tree: Option<u32>) -> Vec<u8> {
    let mut h = vec![0u8; field::smb2::HEADER_LEN];
    h[..4].copy_from_slice(&[0xfe, b'S', b'M', b'B']);
    h[4] = 64;
    h[12..14].copy_from_slice(&command.to_le_bytes());
    let mut flags = u32::from(response);
    if tree.is_none() {
        flags |= 2;
    }
    h[16..20].copy_from_slice(&flags.to_le_bytes());
    h[24..32].copy_from_slice(&message.to_le_bytes());
    h[36..40].copy_from_slice(&tree.unwrap_or(0).to_le_bytes());
    h
}

/// SMB2's 16-byte file id for `n`.
pub fn file_id(n: u64) -> [u8; 16] {
    let mut f = [0; 16];
    f[..8].copy_from_slice(&n.to_le_bytes());
    f[8..].copy_from_slice(&(n + 0x100).to_le_bytes());
    f
}

/// A message with no body that matters (negotiate, session setup...) of `body` bytes.
pub fn smb2_plain(command: u16, response: bool, message: u64, body: usize) -> Vec<u8> {
    let mut m = smb2(command, response, message, Some(0));
    m.resize(m.len() + body, 0);
    m
}

/// A tree connect response: `tree` is a share of `share_type` (1 disk, 2 pipe, 3 print).
pub fn tree_connect_response(message: u64, tree: u32, share_type: u8) -> Vec<u8> {
    let mut m = smb2(0x03, true, message, Some(tree));
    m.extend_from_slice(&[16, 0, share_type, 0]);
    m.extend_from_slice(&[0; 12]);
    m
}

/// A create request for `name` on `tree`.
pub fn create_request(message: u64, tree: u32, name: &str) -> Vec<u8> {
    let mut m = smb2(0x05, false, message, Some(tree));
    let mut body = vec![0u8; 56];
    body[0] = 57;
    let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    body[44..46].copy_from_slice(&120u16.to_le_bytes());
    body[46..48].copy_from_slice(&(utf16.len() as u16).to_le_bytes());
    m.extend_from_slice(&body);
    m.extend_from_slice(&utf16);
    m
}

/// A successful create response that opened file `file`.
pub fn create_response(message: u64, tree: u32, file: u64) -> Vec<u8> {
    let mut m = smb2(0x05, true, message, Some(tree));
    let mut body = vec![0u8; 88];
    body[0] = 89;
    body[64..80].copy_from_slice(&file_id(file));
    m.extend_from_slice(&body);
    m
}

/// A close request of `file`.
pub fn close_request(message: u64, tree: u32, file: u64) -> Vec<u8> {
    let mut m = smb2(0x06, false, message, Some(tree));
    let mut body = vec![0u8; 24];
    body[0] = 24;
    body[8..24].copy_from_slice(&file_id(file));
    m.extend_from_slice(&body);
    m
}

/// A tree disconnect request of `tree`.
pub fn tree_disconnect_request(message: u64, tree: u32) -> Vec<u8> {
    let mut m = smb2(0x04, false, message, Some(tree));
    m.extend_from_slice(&[4, 0, 0, 0]);
    m
}

/// A write request of `data` to `file`.
pub fn write_request(message: u64, tree: u32, file: u64, data: &[u8]) -> Vec<u8> {
    let mut m = smb2(0x09, false, message, Some(tree));
    let mut body = vec![0u8; 48];
    body[0] = 49;
    body[2..4].copy_from_slice(&112u16.to_le_bytes());
    body[4..8].copy_from_slice(&(data.len() as u32).to_le_bytes());
    body[16..32].copy_from_slice(&file_id(file));
    m.extend_from_slice(&body);
    m.extend_from_slice(data);
    m
}

/// A read request of `file`.
pub fn read_request(message: u64, tree: u32, file: u64) -> Vec<u8> {
    let mut m = smb2(0x08, false, message, Some(tree));
    let mut body = vec![0u8; 49];
    body[0] = 49;
    body[16..32].copy_from_slice(&file_id(file));
    m.extend_from_slice(&body);
    m
}

/// A read response carrying `len` bytes of data (the header and body only: the data
/// follows in the stream).
pub fn read_response_header(message: u64, tree: u32) -> Vec<u8> {
    let mut m = smb2(0x08, true, message, Some(tree));
    let mut body = vec![0u8; 16];
    body[0] = 17;
    body[2] = 80;
    m.extend_from_slice(&body);
    m
}

/// A read response carrying `data`.
pub fn read_response(message: u64, tree: u32, data: &[u8]) -> Vec<u8> {
    let mut m = read_response_header(message, tree);
    m[64 + 4..64 + 8].copy_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend_from_slice(data);
    m
}

/// An FSCTL_PIPE_TRANSCEIVE request writing `data` to `file`, or (`response`) its
/// response reading `data` back.
pub fn transceive(message: u64, tree: u32, file: u64, response: bool, data: &[u8]) -> Vec<u8> {
    let mut m = smb2(0x0b, response, message, Some(tree));
    let mut body = vec![0u8; if response { 48 } else { 56 }];
    body[0] = if response { 49 } else { 57 };
    body[4..8].copy_from_slice(&0x0011_c017u32.to_le_bytes());
    body[8..24].copy_from_slice(&file_id(file));
    let at = (64 + body.len()) as u32;
    let len = (data.len() as u32).to_le_bytes();
    if response {
        body[32..36].copy_from_slice(&at.to_le_bytes());
        body[36..40].copy_from_slice(&len);
    } else {
        body[24..28].copy_from_slice(&at.to_le_bytes());
        body[28..32].copy_from_slice(&len);
        body[44..48].copy_from_slice(&4280u32.to_le_bytes());
    }
    m.extend_from_slice(&body);
    m.extend_from_slice(data);
    m
}

/// An SMB3 transform header and `len` bytes of ciphertext.
pub fn transform(len: usize) -> Vec<u8> {
    let mut m = vec![0u8; 52];
    m[..4].copy_from_slice(&[0xfd, b'S', b'M', b'B']);
    m.resize(52 + len, 0x5a);
    m
}

/// An SMB1 header with `words` parameter words and `bytes`.
pub fn smb1(
    command: u8,
    response: bool,
    tree: u16,
    mid: u16,
    words: &[u8],
    bytes: &[u8],
) -> Vec<u8> {
    let mut h = vec![0u8; field::smb1::HEADER_LEN];
    h[..4].copy_from_slice(&[0xff, b'S', b'M', b'B']);
    h[4] = command;
    h[9] = if response { 0x80 } else { 0 };
    h[24..26].copy_from_slice(&tree.to_le_bytes());
    h[26..28].copy_from_slice(&7u16.to_le_bytes());
    h[30..32].copy_from_slice(&mid.to_le_bytes());
    h.push(u8::try_from(words.len() / 2).unwrap_or(0));
    h.extend_from_slice(words);
    h.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    h.extend_from_slice(bytes);
    h
}

/// An SMB1 tree connect response for a share of `service` ("IPC", "A:", "LPT1:").
pub fn smb1_tree_connect_response(tree: u16, mid: u16, service: &str) -> Vec<u8> {
    let words = [0xff, 0, 0, 0, 0, 0];
    let mut bytes = service.as_bytes().to_vec();
    bytes.push(0);
    smb1(0x75, true, tree, mid, &words, &bytes)
}

/// An SMB1 NT create request for `name` (8-bit characters).
pub fn smb1_create_request(tree: u16, mid: u16, name: &str) -> Vec<u8> {
    let mut words = vec![0u8; 48];
    words[0] = 0xff;
    words[5..7].copy_from_slice(&(name.len() as u16).to_le_bytes());
    smb1(0xa2, false, tree, mid, &words, name.as_bytes())
}

/// An SMB1 NT create response that opened `fid`.
pub fn smb1_create_response(tree: u16, mid: u16, fid: u16) -> Vec<u8> {
    let mut words = vec![0u8; 68];
    words[0] = 0xff;
    words[5..7].copy_from_slice(&fid.to_le_bytes());
    smb1(0xa2, true, tree, mid, &words, &[])
}

/// An SMB1 write request of `data` to `fid`.
pub fn smb1_write_request(tree: u16, mid: u16, fid: u16, data: &[u8]) -> Vec<u8> {
    let mut words = vec![0u8; 28];
    words[0] = 0xff;
    words[4..6].copy_from_slice(&fid.to_le_bytes());
    words[20..22].copy_from_slice(&(data.len() as u16).to_le_bytes());
    // The data follows the byte count (and one pad byte), from the header's start.
    let offset = (field::smb1::HEADER_LEN + 1 + 28 + 2 + 1) as u16;
    words[22..24].copy_from_slice(&offset.to_le_bytes());
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(data);
    smb1(0x2f, false, tree, mid, &words, &bytes)
}
