//! The job hash's `data` field: `zlib(pickle((func_name, None, args, kwargs)))`.

use std::cell::RefCell;

use flate2::{Compress, Compression, FlushCompress, Status};

use super::error::RqError;
use crate::pyvalue::{Kwargs, PyValue, pickle_call, unpickle};

/// The call pickle, zlib-compressed (RFC 1950 — gzip or raw deflate would make the job fail
/// to load).
pub fn job_data(func: &str, args: &[PyValue], kwargs: &Kwargs) -> Result<Vec<u8>, RqError> {
    let pickle = pickle_call(func, args, kwargs)?;
    COMPRESSOR.with(|c| zlib(&mut c.borrow_mut(), &pickle))
}

thread_local! {
    /// One deflate state per thread, reset per payload: a fresh one allocates and zeroes
    /// ~300 KB of tables, which cost more than compressing a payload of a few hundred bytes
    /// (most of the work of building 10,000 payloads ahead of an instant, in a profile).
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), true));
}

/// `input` as one zlib stream (header, deflate, Adler-32), with `c` reset first.
fn zlib(c: &mut Compress, input: &[u8]) -> Result<Vec<u8>, RqError> {
    c.reset();
    // Deflate's worst case is a few bytes per 16 KB block over the input, plus the header.
    let mut out = Vec::with_capacity(input.len() + input.len() / 1000 + 64);
    loop {
        let consumed = usize::try_from(c.total_in()).map_err(|e| RqError::Compress(e.to_string()))?;
        let rest = input.get(consumed..).unwrap_or_default();
        match c.compress_vec(rest, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(Status::Ok | Status::BufError) => out.reserve(out.capacity().max(64)),
            Err(e) => return Err(RqError::Compress(e.to_string())),
        }
    }
}

/// A job's call, read back from its `data` field.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedCall {
    pub func: String,
    pub args: Vec<PyValue>,
    pub kwargs: Kwargs,
}

/// The call in a job's `data` field: zlib'd (or, as rq accepts, plain) pickle of
/// `(func_name, instance, args, kwargs)` (`docs/rq.md` W4). Only plain values decode (see
/// [`crate::pyvalue::unpickle`]); a job that pickled a function object or an instance is an
/// error saying so.
pub fn decode_job_data(data: &[u8]) -> Result<DecodedCall, String> {
    let mut raw = Vec::new();
    let pickle: &[u8] = match std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(data), &mut raw) {
        Ok(_) => &raw,
        Err(_) => data,
    };
    let value = unpickle(pickle).map_err(|e| e.to_string())?;
    let PyValue::Tuple(mut parts) = value else {
        return Err(format!("the payload is a {}, not rq's (func, instance, args, kwargs) tuple", value.type_name()));
    };
    if parts.len() != 4 {
        return Err(format!("the payload tuple has {} items, not rq's 4", parts.len()));
    }
    let kwargs = parts.pop();
    let args = parts.pop();
    let instance = parts.pop();
    let func = parts.pop();
    let (Some(PyValue::Str(func)), Some(PyValue::None)) = (func, instance) else {
        return Err("the call is not a dotted function name (a pickled function or a method of an instance)".into());
    };
    let args = match args {
        Some(PyValue::Tuple(a) | PyValue::List(a)) => a,
        _ => return Err("the positional arguments are not a tuple".into()),
    };
    let kwargs = match kwargs {
        Some(PyValue::Dict(items)) => items
            .into_iter()
            .map(|(k, v)| match k {
                PyValue::Str(k) => Ok((k, v)),
                other => Err(format!("a keyword argument's name is a {}", other.type_name())),
            })
            .collect::<Result<Kwargs, String>>()?,
        _ => return Err("the keyword arguments are not a dict".into()),
    };
    Ok(DecodedCall { func, args, kwargs })
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

    /// The per-thread deflate state is reset between payloads: each stream stands alone,
    /// whatever came before it — small, large, incompressible, empty.
    #[test]
    fn reused_compressor_writes_whole_streams() {
        let mut noise = Vec::with_capacity(200_000);
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push(x as u8);
        }
        let inputs: [&[u8]; 5] = [b"abc", &noise, b"", &[b'a'; 100_000], b"abc"];
        let streams: Vec<Vec<u8>> =
            inputs.iter().map(|i| COMPRESSOR.with(|c| zlib(&mut c.borrow_mut(), i)).expect("zlib")).collect();
        for (input, stream) in inputs.iter().zip(&streams) {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&stream[..]), &mut raw).expect("inflate");
            assert_eq!(&raw[..], *input);
        }
        assert_eq!(streams[0], streams[4], "the same input gives the same stream after other work");
    }

    #[test]
    fn decodes_what_it_writes() {
        let kwargs = parse_kwargs(Some("{'site': 'a.local', 'kwargs': {'x': (1, 'é')}}")).expect("kwargs");
        let args = vec![PyValue::Int(1)];
        let data = job_data("m.f", &args, &kwargs).expect("data");
        let call = decode_job_data(&data).expect("decode");
        assert_eq!(call, DecodedCall { func: "m.f".into(), args: args.clone(), kwargs: kwargs.clone() });
        let text = crate::rq::job::describe(&call.func, &call.args, &call.kwargs);
        assert_eq!(text, "m.f(1, site='a.local', kwargs={'x': (1, 'é')})");
        // rq also accepts an uncompressed pickle.
        let plain = pickle_call("m.f", &args, &kwargs).expect("pickle");
        assert_eq!(decode_job_data(&plain).expect("plain"), call);
        assert!(decode_job_data(b"\x80\x02N.").expect_err("not a tuple").contains("not rq's"));
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
