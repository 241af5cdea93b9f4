//! PEM blocks read as Go's `encoding/pem.Decode` reads them, so that a bundle is judged
//! block by block exactly as kube-apiserver judges it: text around and between blocks is
//! skipped, a block's `Key: value` header lines are reported, and a block whose body is
//! not base64 or that has no matching END line is skipped.

use base64::Engine;

/// One PEM block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The type after `BEGIN ` (`CERTIFICATE`).
    pub label: String,
    /// Whether the block has `Key: value` header lines.
    pub has_headers: bool,
    /// The decoded body.
    pub der: Vec<u8>,
}

const BEGIN: &str = "-----BEGIN ";
const TRAILER: &str = "-----";

/// Every block of `text`, in order.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((block, after)) = next_block(rest) {
        if let Some(b) = block {
            out.push(b);
        }
        rest = after;
    }
    out
}

/// The next block of `text` (None when what began as a block is malformed) and the text
/// after it; None when no BEGIN line is left.
fn next_block(text: &str) -> Option<(Option<Block>, &str)> {
    let start = begin_at(text)?;
    let (line, body) = split_line(&text[start + BEGIN.len()..]);
    let skip = || Some((None, body));
    let Some(label) = line.trim_end().strip_suffix(TRAILER) else {
        return skip();
    };
    let (headers, body_start) = header_lines(body);
    // As Go: the first END line (at the start of a line) ends the block; it must name the
    // block's type and have nothing but spaces and tabs after its dashes.
    const END: &str = "-----END ";
    let end = if body_start.starts_with(END) {
        0
    } else {
        match body_start.find(&format!("\n{END}")) {
            Some(i) => i + 1,
            None => return skip(),
        }
    };
    let (end_line, after) = split_line(&body_start[end..]);
    let trailer = format!("{label}{TRAILER}");
    let Some(rest_of_line) = end_line[END.len()..].strip_prefix(&trailer) else {
        return skip();
    };
    if !rest_of_line.trim_end_matches([' ', '\t']).is_empty() {
        return skip();
    }
    let b64: String = body_start[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return skip();
    };
    Some((
        Some(Block {
            label: label.to_owned(),
            has_headers: headers > 0,
            der,
        }),
        after,
    ))
}

/// Where a BEGIN line starts: at the start of the text or of a line.
fn begin_at(text: &str) -> Option<usize> {
    if text.starts_with(BEGIN) {
        return Some(0);
    }
    text.find(&format!("\n{BEGIN}")).map(|i| i + 1)
}

/// The first line (without its end) and the text after it.
fn split_line(text: &str) -> (&str, &str) {
    match text.find('\n') {
        Some(i) => (text[..i].trim_end_matches('\r'), &text[i + 1..]),
        None => (text, ""),
    }
}

/// How many `Key: value` lines start `text`, and the text after them (and after the blank
/// line that may end them).
fn header_lines(mut text: &str) -> (usize, &str) {
    let mut n = 0;
    loop {
        let (line, next) = split_line(text);
        if text.is_empty() || !line.contains(':') {
            break;
        }
        n += 1;
        text = next;
    }
    if n > 0 {
        let (line, next) = split_line(text);
        if line.trim().is_empty() {
            text = next;
        }
    }
    (n, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AB: &str = "YWI="; // "ab"

    #[test]
    fn blocks_are_read_as_go_reads_them() {
        let one = format!("-----BEGIN CERTIFICATE-----\n{AB}\n-----END CERTIFICATE-----\n");
        let b = blocks(&one);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].label.as_str(), b[0].has_headers, b[0].der.as_slice()),
            ("CERTIFICATE", false, b"ab".as_slice())
        );
        // Text around and between blocks is skipped; CRLF line ends are read.
        let two = format!("intro\r\n{}between\n{}", one.replace('\n', "\r\n"), one);
        assert_eq!(blocks(&two).len(), 2);
        // Headers are reported.
        let headed = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\n{AB}\n-----END RSA PRIVATE KEY-----\n"
        );
        let b = blocks(&headed);
        assert_eq!(b.len(), 1);
        assert!(b[0].has_headers && b[0].der == b"ab");
        // A body that is not base64, a missing END line, or a mismatched END is skipped.
        for bad in [
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nYWI=\n",
            "-----BEGIN CERTIFICATE-----\nYWI=\n-----END KEY-----\n",
            "no pem here",
            "",
        ] {
            assert!(blocks(bad).is_empty(), "{bad:?}");
        }
        // A BEGIN in the middle of a line is not a block.
        assert!(blocks(&format!("x{one}")).is_empty());
        // Nor is a block whose END is in the middle of a line, has text after its dashes,
        // or whose first END names another type (Go does not look for a later one).
        for bad in [
            "-----BEGIN CERTIFICATE-----\nYWI=-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nYWI=\n-----END CERTIFICATE----- x\n",
            "-----BEGIN CERTIFICATE-----\nYWI=\n-----END KEY-----\n-----END CERTIFICATE-----\n",
        ] {
            assert!(blocks(bad).is_empty(), "{bad:?}");
        }
        // Spaces and tabs after the END line's dashes are allowed, and so is an empty body.
        let spaced = format!("-----BEGIN CERTIFICATE-----\n{AB}\n-----END CERTIFICATE----- \t\r\n");
        assert_eq!(blocks(&spaced).len(), 1);
        let empty = blocks("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
        assert!(empty.len() == 1 && empty[0].der.is_empty());
    }
}
