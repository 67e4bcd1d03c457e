//! Framing: a 4-byte big-endian body length, then the body. No I/O beyond std `Read`.

use std::io::{ErrorKind, Read};

use crate::ProtocolError;

/// Bytes in a frame header (the big-endian body length).
pub const FRAME_HEADER_LEN: usize = 4;

/// Default maximum body length. Every legitimate message is far smaller (a notify of 1,000
/// schedules is ~60 KiB), so anything larger is an error or an attack. A server may choose
/// another limit; clients use this one.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// Body length from a frame header, checked against `max`.
///
/// A zero length is refused: an empty body is never a message, and refusing it here spares the
/// caller a read. A header whose first byte is `{` (a legacy JSON request, see
/// [`crate::is_legacy_start`]) always yields `FrameTooLarge`, because it would announce ≥ 2 GB.
pub fn decode_frame_len(header: [u8; FRAME_HEADER_LEN], max: usize) -> Result<usize, ProtocolError> {
    let len = u32::from_be_bytes(header);
    // u32 always fits in usize on the 32/64-bit targets this runs on; saturate rather than wrap.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max {
        return Err(ProtocolError::FrameTooLarge { len, max });
    }
    if len == 0 {
        return Err(ProtocolError::Malformed("frame has an empty body".to_owned()));
    }
    Ok(len)
}

/// The frame header announcing a body of `body_len` bytes, checked against `max`.
pub fn encode_frame_header(body_len: usize, max: usize) -> Result<[u8; FRAME_HEADER_LEN], ProtocolError> {
    if body_len > max {
        return Err(ProtocolError::FrameTooLarge { len: body_len, max });
    }
    // max ≤ u32::MAX is not guaranteed by the type, so convert checked.
    let len =
        u32::try_from(body_len).map_err(|_| ProtocolError::FrameTooLarge { len: body_len, max: u32::MAX as usize })?;
    Ok(len.to_be_bytes())
}

/// `body` with its header in front, in one buffer (one `write_all`, one syscall).
pub fn frame_body(body: &[u8], max: usize) -> Result<Vec<u8>, ProtocolError> {
    let header = encode_frame_header(body.len(), max)?;
    let mut framed = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    framed.extend_from_slice(&header);
    framed.extend_from_slice(body);
    Ok(framed)
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<usize, ProtocolError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProtocolError::Io(e)),
        }
    }
    Ok(filled)
}

/// Blocking read of one frame; returns its body.
///
/// `Closed` when the stream ends before the first header byte (a peer hanging up between
/// requests), `Truncated` when it ends inside the frame, `FrameTooLarge` when the header
/// announces more than `max` (the body is then left unread: answer and close).
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Err(ProtocolError::Closed);
    }
    if got < FRAME_HEADER_LEN {
        return Err(ProtocolError::Truncated { received: got, expected: Some(FRAME_HEADER_LEN) });
    }
    let len = decode_frame_len(header, max)?;
    let mut body = vec![0u8; len];
    let got = read_full(r, &mut body)?;
    if got < len {
        return Err(ProtocolError::Truncated {
            received: FRAME_HEADER_LEN + got,
            expected: Some(FRAME_HEADER_LEN + len),
        });
    }
    Ok(body)
}

/// Sans-I/O frame splitter for servers that read with their own (async) I/O: push whatever
/// bytes arrived, pop complete frame bodies.
#[derive(Debug, Clone)]
pub struct FrameReader {
    buf: Vec<u8>,
    max: usize,
}

impl FrameReader {
    /// A reader that refuses frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { buf: Vec::new(), max }
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The first buffered byte, if any: lets a server spot a legacy JSON request
    /// ([`crate::is_legacy_start`]) before treating the bytes as a frame header.
    pub fn first_byte(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Takes all buffered bytes out (e.g. to hand them to the legacy parser).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// How far the frame being received got: `(bytes buffered, bytes the frame has in all)`,
    /// header included; the total is [`FRAME_HEADER_LEN`] until the header is complete. What a
    /// server reports when the peer closes inside a frame.
    pub fn progress(&self) -> (usize, usize) {
        let total = match self.buf.first_chunk::<FRAME_HEADER_LEN>() {
            Some(header) => {
                FRAME_HEADER_LEN.saturating_add(usize::try_from(u32::from_be_bytes(*header)).unwrap_or(usize::MAX))
            }
            None => FRAME_HEADER_LEN,
        };
        (self.buf.len(), total)
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed. An error (oversize or
    /// empty frame) leaves the stream unusable: answer it and close the connection.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(header) = self.buf.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = decode_frame_len(*header, self.max)?;
        let end = FRAME_HEADER_LEN + len;
        if self.buf.len() < end {
            return Ok(None);
        }
        if end == self.buf.len() {
            // The usual case, one frame per read: hand the buffer over instead of copying, so
            // an idle connection keeps no buffer sized for its biggest request.
            let mut body = std::mem::take(&mut self.buf);
            body.drain(..FRAME_HEADER_LEN);
            return Ok(Some(body));
        }
        let body = self.buf[FRAME_HEADER_LEN..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_limits() {
        assert_eq!(decode_frame_len([0, 0, 0, 5], 10).ok(), Some(5));
        assert!(matches!(decode_frame_len([0, 0, 0, 11], 10), Err(ProtocolError::FrameTooLarge { len: 11, max: 10 })));
        assert!(matches!(decode_frame_len([0, 0, 0, 0], 10), Err(ProtocolError::Malformed(_))));
        // A legacy JSON request read as a header announces > 2 GB.
        assert!(matches!(decode_frame_len(*b"{\"re", MAX_FRAME_LEN), Err(ProtocolError::FrameTooLarge { .. })));
        assert!(matches!(encode_frame_header(11, 10), Err(ProtocolError::FrameTooLarge { .. })));
    }

    #[test]
    fn read_frame_distinguishes_closed_truncated_and_complete() {
        let mut empty: &[u8] = &[];
        assert!(matches!(read_frame(&mut empty, 100), Err(ProtocolError::Closed)));
        let mut short: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame(&mut short, 100),
            Err(ProtocolError::Truncated { received: 2, expected: Some(4) })
        ));
        let mut half: &[u8] = &[0, 0, 0, 3, 1];
        assert!(matches!(read_frame(&mut half, 100), Err(ProtocolError::Truncated { received: 5, expected: Some(7) })));
        let mut two: &[u8] = &[0, 0, 0, 1, 9, 0, 0, 0, 2, 7, 8];
        assert_eq!(read_frame(&mut two, 100).ok(), Some(vec![9]));
        assert_eq!(read_frame(&mut two, 100).ok(), Some(vec![7, 8]));
        assert!(matches!(read_frame(&mut two, 100), Err(ProtocolError::Closed)));
    }

    #[test]
    fn frame_reader_splits_byte_by_byte_input() {
        let mut out = frame_body(b"abc", 100).unwrap_or_default();
        out.extend(frame_body(b"de", 100).unwrap_or_default());
        let mut reader = FrameReader::new(100);
        let mut frames = Vec::new();
        for b in &out {
            reader.push(std::slice::from_ref(b));
            while let Ok(Some(frame)) = reader.next_frame() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, vec![b"abc".to_vec(), b"de".to_vec()]);
        assert_eq!(reader.buffered(), 0);
    }

    #[test]
    fn frame_reader_pops_pipelined_frames_and_reports_progress() {
        let mut reader = FrameReader::new(100);
        assert_eq!(reader.progress(), (0, FRAME_HEADER_LEN));
        reader.push(&[0, 0, 0, 1, 9, 0, 0, 0, 3, 7]);
        assert_eq!(reader.next_frame().ok(), Some(Some(vec![9])));
        assert_eq!(reader.first_byte(), Some(0));
        assert_eq!(reader.next_frame().ok(), Some(None));
        assert_eq!(reader.progress(), (5, 7));
        reader.push(&[8, 6]);
        assert_eq!(reader.next_frame().ok(), Some(Some(vec![7, 8, 6])));
        reader.push(&[0, 0]);
        assert_eq!(reader.progress(), (2, FRAME_HEADER_LEN));
    }
}
