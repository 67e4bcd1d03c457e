//! The schedule's fingerprint: one number over everything that shapes its runs and jobs,
//! stored in Redis so a restarted daemon knows whether a stored plan still belongs to it.

use std::fmt;

/// FNV-1a 64 over everything that shapes a schedule's runs and jobs. A number, not text: the
/// engine keeps one per schedule and compares them on every rebuild. Written to Redis as 16
/// hex digits ([`fmt::Display`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Fingerprint {
    /// The value a [`fmt::Display`] wrote (16 hex digits); `None` for anything else.
    pub fn parse_hex(text: &str) -> Option<Fingerprint> {
        (text.len() == 16).then(|| u64::from_str_radix(text, 16).ok().map(Fingerprint)).flatten()
    }
}

/// Incremental FNV-1a 64: parts are hashed in place, so computing a fingerprint does not
/// build the joined text. Stable across Rust releases, unlike `DefaultHasher`, because the
/// value is stored in Redis across restarts.
pub(super) struct FingerprintHasher(u64);

impl FingerprintHasher {
    pub(super) fn new() -> Self {
        FingerprintHasher(0xcbf2_9ce4_8422_2325)
    }
    /// Continues the current part.
    pub(super) fn write(&mut self, text: &str) {
        for b in text.bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// Ends the current part (a separator byte, so `("ab", "c")` and `("a", "bc")` differ).
    pub(super) fn end(&mut self) {
        self.0 ^= 0x1f;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    pub(super) fn part(&mut self, text: &str) {
        self.write(text);
        self.end();
    }
    pub(super) fn finish(self) -> Fingerprint {
        Fingerprint(self.0)
    }
}

/// Fingerprint of the parts (FNV-1a 64, each part followed by a separator): what the
/// incremental hasher must equal, so fingerprints stored by earlier releases stay valid.
#[cfg(test)]
pub(super) fn fingerprint(parts: &[&str]) -> Fingerprint {
    let mut h = FingerprintHasher::new();
    for part in parts {
        h.part(part);
    }
    h.finish()
}

impl fmt::Write for FingerprintHasher {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s);
        Ok(())
    }
}
