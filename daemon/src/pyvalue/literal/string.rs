//! String and bytes literals: prefixes, quotes, escapes, implicit concatenation.

use super::{LiteralError, Parser, StrPiece};
use crate::pyvalue::value::PyValue;

impl Parser<'_> {
    /// If a string literal starts here: (prefix length, raw, bytes).
    pub(super) fn string_start(&self) -> Option<(usize, bool, bool)> {
        let mut n = 0;
        let (mut raw, mut bytes, mut uni) = (false, false, false);
        while let Some(c) = self.peek_at(n) {
            match c {
                b'\'' | b'"' => {
                    // `ur''` and `bu''` are not Python 3 syntax.
                    if uni && (raw || bytes) {
                        return None;
                    }
                    return Some((n, raw, bytes));
                }
                b'r' | b'R' if !raw && n < 2 => raw = true,
                b'b' | b'B' if !bytes && n < 2 => bytes = true,
                b'u' | b'U' if n == 0 => uni = true,
                _ => return None,
            }
            n += 1;
        }
        None
    }

    /// One or more adjacent string literals, concatenated.
    pub(super) fn strings(&mut self) -> Result<PyValue, LiteralError> {
        let start = self.pos;
        let mut acc: Option<StrPiece> = None;
        while let Some((plen, raw, bytes)) = self.string_start() {
            let piece_at = self.pos;
            self.pos += plen;
            let piece = self.one_string(raw, bytes)?;
            acc = match (acc, piece) {
                (None, p) => Some(p),
                (Some(StrPiece::Str(mut a)), StrPiece::Str(b)) => {
                    a.push_str(&b);
                    Some(StrPiece::Str(a))
                }
                (Some(StrPiece::Bytes(mut a)), StrPiece::Bytes(b)) => {
                    a.extend_from_slice(&b);
                    Some(StrPiece::Bytes(a))
                }
                _ => return Err(self.err_at(piece_at, "cannot mix bytes and str literals")),
            };
            let before_ws = self.pos;
            self.skip_ws();
            if self.string_start().is_none() {
                self.pos = before_ws;
                break;
            }
        }
        match acc {
            Some(StrPiece::Str(s)) => Ok(PyValue::Str(s)),
            Some(StrPiece::Bytes(b)) => Ok(PyValue::Bytes(b)),
            None => Err(self.err_at(start, "expected a string literal")),
        }
    }

    fn one_string(&mut self, raw: bool, bytes: bool) -> Result<StrPiece, LiteralError> {
        let open_at = self.pos;
        let q = self.b[self.pos];
        let triple = self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q);
        self.pos += if triple { 3 } else { 1 };
        let mut s = String::new();
        let mut out_b: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_at(open_at, "unterminated string literal"));
            };
            if c == q && (!triple || (self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q))) {
                self.pos += if triple { 3 } else { 1 };
                break;
            }
            if c == b'\n' && !triple {
                return Err(self.err_at(open_at, "unterminated string literal (newline inside)"));
            }
            if bytes && c >= 0x80 {
                return Err(self.err("bytes can only contain ASCII literal characters"));
            }
            if c == b'\\' {
                if raw {
                    // A raw string keeps the backslash and the next char; the
                    // pair never ends the literal.
                    let next = self.src[self.pos + 1..].chars().next();
                    let Some(next) = next else {
                        return Err(self.err_at(open_at, "unterminated string literal"));
                    };
                    if bytes && !next.is_ascii() {
                        return Err(self.err("bytes can only contain ASCII literal characters"));
                    }
                    let pair = &self.src[self.pos..self.pos + 1 + next.len_utf8()];
                    s.push_str(pair);
                    out_b.extend_from_slice(pair.as_bytes());
                    self.pos += pair.len();
                    continue;
                }
                self.escape(bytes, &mut s, &mut out_b)?;
                continue;
            }
            let ch = self.current_char();
            if bytes {
                out_b.push(c);
            } else {
                s.push(ch);
            }
            self.pos += ch.len_utf8();
        }
        Ok(if bytes { StrPiece::Bytes(out_b) } else { StrPiece::Str(s) })
    }

    fn escape(&mut self, bytes: bool, s: &mut String, b: &mut Vec<u8>) -> Result<(), LiteralError> {
        let at = self.pos;
        self.pos += 1; // the backslash
        let Some(c) = self.peek() else {
            return Err(self.err_at(at, "unterminated string literal"));
        };
        let simple = match c {
            b'\n' => Some(None),
            b'\r' => {
                if self.peek_at(1) == Some(b'\n') {
                    self.pos += 1;
                }
                Some(None)
            }
            b'\\' => Some(Some(b'\\')),
            b'\'' => Some(Some(b'\'')),
            b'"' => Some(Some(b'"')),
            b'a' => Some(Some(0x07)),
            b'b' => Some(Some(0x08)),
            b'f' => Some(Some(0x0c)),
            b'n' => Some(Some(b'\n')),
            b'r' => Some(Some(b'\r')),
            b't' => Some(Some(b'\t')),
            b'v' => Some(Some(0x0b)),
            _ => None,
        };
        if let Some(v) = simple {
            self.pos += 1;
            if let Some(v) = v {
                s.push(v as char);
                b.push(v);
            }
            return Ok(());
        }
        let code: u32 = match c {
            b'0'..=b'7' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 3 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.pos += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                if bytes && v > 0xff {
                    return Err(self.err_at(at, format!("octal escape \\{v:o} is out of range for bytes")));
                }
                v
            }
            b'x' => {
                self.pos += 1;
                self.hex_digits(2, at)?
            }
            b'u' if !bytes => {
                self.pos += 1;
                self.hex_digits(4, at)?
            }
            b'U' if !bytes => {
                self.pos += 1;
                self.hex_digits(8, at)?
            }
            b'N' if !bytes => {
                return Err(self.err_at(at, "\\N{name} escapes are not supported"));
            }
            _ => {
                // Unknown escape: Python keeps the backslash and the char.
                let ch = self.current_char();
                if bytes && !ch.is_ascii() {
                    return Err(self.err("bytes can only contain ASCII literal characters"));
                }
                s.push('\\');
                s.push(ch);
                b.push(b'\\');
                b.extend_from_slice(ch.to_string().as_bytes());
                self.pos += ch.len_utf8();
                return Ok(());
            }
        };
        if bytes {
            // Checked above: \x gives at most 0xff, octal checked for bytes.
            b.push(code as u8);
        } else {
            let ch = char::from_u32(code).ok_or_else(|| {
                self.err_at(
                    at,
                    if (0xd800..=0xdfff).contains(&code) {
                        format!("lone surrogate \\u{code:04x} cannot be represented")
                    } else {
                        format!("escape \\U{code:08x} is beyond the Unicode range")
                    },
                )
            })?;
            s.push(ch);
        }
        Ok(())
    }

    fn hex_digits(&mut self, n: usize, at: usize) -> Result<u32, LiteralError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek().and_then(|d| (d as char).to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => {
                    return Err(self.err_at(at, format!("truncated escape: expected {n} hex digits")));
                }
            }
        }
        Ok(v)
    }
}
