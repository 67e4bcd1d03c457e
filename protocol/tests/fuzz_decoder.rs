//! Bounded, seeded fuzzing of every decoder — the CI stand-in for a cargo-fuzz target.
//!
//! 200,000 inputs (override with `BTU_FUZZ_ITERATIONS`, seed with `BTU_FUZZ_SEED`), each a golden
//! vector mutated (bit flips, byte overwrites with msgpack marker bytes, insertions, deletions,
//! truncation, splices, forged length prefixes) or plain random bytes, fed to
//! `decode_frame_len`, `FrameReader`, `read_frame`, `decode_request`, `decode_response`,
//! `peek_request_id` and `parse_legacy`. The oracle: nothing panics, and whatever decodes
//! re-encodes to something that decodes to the same value. Deterministic for a given seed.

mod common;

use btu_protocol::*;

/// xorshift64*: tiny, seedable, good enough to drive mutations (not for cryptography).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Bytes with a meaning in msgpack (markers for maps, strings, ints, nil …) or in JSON: mutating
/// to these reaches deeper decoder paths than uniform noise does.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xca, 0xcb, 0xcc,
    0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, b'{', b'}', b'"', b':', b',',
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(9) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(data.len() + 1);
                data.insert(i, rng.byte());
            }
            3 if !data.is_empty() => {
                let i = rng.below(data.len());
                data.remove(i);
            }
            4 => {
                let keep = rng.below(data.len() + 1);
                data.truncate(keep);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(other.len() + 1);
                let at = rng.below(data.len() + 1);
                data.splice(at..at, other[cut..].iter().copied());
            }
            6 if data.len() >= 4 => {
                // Forge the length prefix: huge, zero, off by one, or random.
                let len = match rng.below(4) {
                    0 => u32::MAX,
                    1 => 0,
                    2 => (data.len() as u32).wrapping_sub(3),
                    _ => rng.next() as u32,
                };
                data[..4].copy_from_slice(&len.to_be_bytes());
            }
            7 => {
                // Deep nesting: arrays/maps of arrays.
                let depth = rng.below(3000);
                let marker = if rng.below(2) == 0 { 0x91 } else { 0x81 };
                let at = rng.below(data.len() + 1);
                data.splice(at..at, std::iter::repeat_n(marker, depth));
            }
            _ => {
                let n = rng.below(64);
                data = (0..n).map(|_| rng.byte()).collect();
            }
        }
    }
    data
}

fn exercise(input: &[u8], stats: &mut [usize; 3]) {
    if let Some(header) = input.first_chunk::<4>() {
        let _ = decode_frame_len(*header, MAX_FRAME_LEN);
    }
    let mut reader = FrameReader::new(MAX_FRAME_LEN);
    reader.push(input);
    let _ = reader.next_frame();
    let _ = read_frame(&mut &input[..], MAX_FRAME_LEN);
    let _ = parse_legacy(input);
    // Both as a framed input (header stripped) and as a raw body.
    let bodies = [input.get(4..).unwrap_or_default(), input];
    for body in bodies {
        let _ = peek_request_id(body);
        match decode_request(body) {
            Ok(envelope) => {
                stats[0] += 1;
                let again = encode_request(&envelope).map(|f| decode_request(&f[4..]).ok());
                assert_eq!(
                    again.ok().flatten().as_ref(),
                    Some(&envelope),
                    "request re-decode differs for {input:02x?}"
                );
            }
            Err(_) => stats[2] += 1,
        }
        match decode_response(body) {
            Ok(envelope) => {
                stats[1] += 1;
                let again = encode_response(&envelope).map(|f| decode_response(&f[4..]).ok());
                assert_eq!(
                    again.ok().flatten().as_ref(),
                    Some(&envelope),
                    "response re-decode differs for {input:02x?}"
                );
            }
            Err(_) => stats[2] += 1,
        }
    }
}

#[test]
fn fuzz_decoders_with_mutated_golden_vectors() {
    let iterations: usize = std::env::var("BTU_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let seed: u64 =
        std::env::var("BTU_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x00B7_u64 << 32 | 0x5EED);
    let mut seeds: Vec<Vec<u8>> =
        common::golden_cases().iter().map(|(name, g)| g.encode().unwrap_or_else(|e| panic!("{name}: {e}"))).collect();
    seeds.push(br#"{"request_type": "create_task_schedule", "request_content": "TS-0001"}"#.to_vec());
    let mut rng = Rng(seed | 1);
    let mut stats = [0usize; 3];
    for _ in 0..iterations {
        let input = mutate(&mut rng, &seeds);
        exercise(&input, &mut stats);
    }
    eprintln!(
        "fuzz_decoder: {iterations} inputs (seed {seed}): {} decoded as requests, {} as responses, {} refused",
        stats[0], stats[1], stats[2]
    );
    // The mutator must reach the success paths too, or it only ever tests the first check.
    assert!(stats[0] > 0 && stats[1] > 0, "mutations never produced a valid message: {stats:?}");
}
