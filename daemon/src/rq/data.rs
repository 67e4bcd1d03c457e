//! The job hash's `data` field: `zlib(pickle((func_name, None, args, kwargs)))`.

use flate2::Compression;
use flate2::write::ZlibEncoder;
use std::io::Write as _;

use super::error::RqError;
use crate::pyvalue::{Kwargs, PyValue, pickle_call};

/// The call pickle, zlib-compressed (RFC 1950 — gzip or raw deflate would make the job fail
/// to load).
pub fn job_data(func: &str, args: &[PyValue], kwargs: &Kwargs) -> Result<Vec<u8>, RqError> {
    let pickle = pickle_call(func, args, kwargs)?;
    let mut enc = ZlibEncoder::new(Vec::with_capacity(pickle.len() / 2 + 16), Compression::default());
    enc.write_all(&pickle).map_err(|e| RqError::Compress(e.to_string()))?;
    enc.finish().map_err(|e| RqError::Compress(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyvalue::{kwargs_repr, parse_kwargs};

    #[test]
    fn job_data_is_a_zlib_stream() {
        let data = job_data("m.f", &[], &Vec::new()).expect("data");
        assert_eq!(data[0], 0x78, "zlib header (RFC 1950), not gzip or raw deflate");
        let mut dec = flate2::read::ZlibDecoder::new(&data[..]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut dec, &mut raw).expect("inflate");
        assert_eq!(raw, pickle_call("m.f", &[], &Vec::new()).expect("pickle"));
    }

    /// Real CPython loads the zlib'd call and sees the same values (same repr,
    /// so same types, order, and digits).
    #[test]
    fn cpython_loads_it() {
        let cases = [
            "{'a': 1, 'b': [1, 2.5, None, True, False], 'c': {'d': (1,), 'e': ()}}",
            "{'uni': 'héllo wörld ✓ 😀 \\x00\\n', 'nbsp': 'a\\xa0b'}",
            "{'big': 123456789012345678901234567890123456789012345678901234567890, 'neg': -98765432109876543210, 'min': -9223372036854775808, 'max': 9223372036854775807, 'i32': -2147483649, 'edge': [255, 256, 65535, 65536, -1, 0, 2147483647, 2147483648, 128, -128, -129, 32768]}",
            "{'f': [0.1, 1e16, 1e-5, 1.5e300, -0.0, 3.141592653589793, 1e22, 5e-324]}",
            "{'nested': [[[[{'x': [(1, (2, (3,)))]}]]]], 'empty': [{}, [], (), '', b'']}",
            "{'keys': {1: 'a', (1, 2): 'd', None: 'e', b'k': 'f', 2.5: 'g', 'z': 0, 'a': 1}}",
            "{'bytes': b'\\x00\\xff', 'quotes': ['\\'', '\"', b'\\'']}",
        ];
        let huge = format!(
            "{{'huge': {}, 'blob': b'{}', 'text': '{}'}}",
            "9".repeat(700),
            "\\x01".repeat(300),
            "é".repeat(70_000)
        );
        let mut payloads = Vec::new();
        let mut expected = Vec::new();
        for text in cases.iter().copied().chain([huge.as_str()]) {
            let kwargs = parse_kwargs(Some(text)).expect("kwargs");
            let args = vec![PyValue::Str("pos".into()), PyValue::Tuple(vec![])];
            let data = job_data("mod.func", &args, &kwargs).expect("data");
            payloads.push(data.iter().map(|b| format!("{b:02x}")).collect::<String>());
            expected.push(format!("('mod.func', None, ('pos', ()), {})", kwargs_repr(&kwargs)));
        }
        let lines = crate::pyvalue::tests::python3_lines(
            "import pickle, sys, zlib\nfor line in sys.stdin:\n    print(repr(pickle.loads(zlib.decompress(bytes.fromhex(line.strip())))))\n",
            payloads,
        );
        assert_eq!(lines.len(), expected.len());
        for (got, want) in lines.iter().zip(&expected) {
            assert_eq!(got, want);
        }
    }
}
