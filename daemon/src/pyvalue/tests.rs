//! Tests of reading, `repr()` and Python equality, with CPython as the reference.
//! (The pickle encoder's tests are in `pickle.rs`.)

use super::*;
use crate::pyvalue::value::canonical_int;
use num_bigint::BigInt;
use proptest::prelude::*;

fn p(s: &str) -> PyValue {
    match parse_literal(s) {
        Ok(v) => v,
        Err(e) => panic!("{s:?}: {e}"),
    }
}

fn s(x: &str) -> PyValue {
    PyValue::Str(x.into())
}

#[test]
fn scalars() {
    assert_eq!(p("None"), PyValue::None);
    assert_eq!(p(" True "), PyValue::Bool(true));
    assert_eq!(p("False"), PyValue::Bool(false));
    assert_eq!(p("42"), PyValue::Int(42));
    assert_eq!(p("-42"), PyValue::Int(-42));
    assert_eq!(p("+ 7"), PyValue::Int(7));
    assert_eq!(p("1_000_000"), PyValue::Int(1_000_000));
    assert_eq!(p("0x_FF"), PyValue::Int(255));
    assert_eq!(p("0o17"), PyValue::Int(15));
    assert_eq!(p("-0b1010"), PyValue::Int(-10));
    assert_eq!(p("000"), PyValue::Int(0));
    assert_eq!(p("-9223372036854775808"), PyValue::Int(i64::MIN));
    assert_eq!(p("9223372036854775808"), PyValue::BigInt(BigInt::from(i64::MAX) + 1));
    assert_eq!(p("-9223372036854775809"), PyValue::BigInt(BigInt::from(i64::MIN) - 1));
    assert_eq!(p("1.5"), PyValue::Float(1.5));
    assert_eq!(p("1."), PyValue::Float(1.0));
    assert_eq!(p(".5"), PyValue::Float(0.5));
    assert_eq!(p("1e5"), PyValue::Float(1e5));
    assert_eq!(p("1_0.2_5e-1_0"), PyValue::Float(10.25e-10));
    assert_eq!(p("-2.5E+3"), PyValue::Float(-2500.0));
    assert_eq!(p("1e999"), PyValue::Float(f64::INFINITY));
}

#[test]
fn strings() {
    assert_eq!(p(r#"'a\'b'"#), s("a'b"));
    assert_eq!(p(r#""a\"b""#), s("a\"b"));
    assert_eq!(p(r"'\n\t\\\x41\u00e9\U0001F600\101\0'"), s("\n\t\\Aé😀A\0"));
    assert_eq!(p("'ab' \"cd\"\n 'ef'"), s("abcdef"));
    assert_eq!(p(r"r'\n\''"), s(r"\n\'"));
    assert_eq!(p("'''a\n'b'\"'''"), s("a\n'b'\""));
    assert_eq!(p("\"\"\"x\"\"\""), s("x"));
    assert_eq!(p("u'é'"), s("é"));
    assert_eq!(p(r"'\d'"), s(r"\d"));
    assert_eq!(p("'a\\\nb'"), s("ab"));
    assert_eq!(p(r"b'a\x00\xff\u'"), PyValue::Bytes(b"a\x00\xff\\u".to_vec()));
    assert_eq!(p(r"Rb'\x'"), PyValue::Bytes(b"\\x".to_vec()));
    assert_eq!(p("''"), s(""));
}

#[test]
fn containers() {
    assert_eq!(p("()"), PyValue::Tuple(vec![]));
    assert_eq!(p("(1,)"), PyValue::Tuple(vec![PyValue::Int(1)]));
    assert_eq!(p("(1)"), PyValue::Int(1));
    assert_eq!(p("1, 2,"), PyValue::Tuple(vec![PyValue::Int(1), PyValue::Int(2)]));
    assert_eq!(p("[ ]"), PyValue::List(vec![]));
    assert_eq!(
        p("[1, [2, (3,)],]"),
        PyValue::List(vec![
            PyValue::Int(1),
            PyValue::List(vec![PyValue::Int(2), PyValue::Tuple(vec![PyValue::Int(3)])]),
        ])
    );
    assert_eq!(p("{}"), PyValue::Dict(vec![]));
    assert_eq!(
        p("{\n  'a': 1,  # comment\n  (1, 'x'): None,\n}"),
        PyValue::Dict(vec![(s("a"), PyValue::Int(1)), (PyValue::Tuple(vec![PyValue::Int(1), s("x")]), PyValue::None),])
    );
    // Python: first key's position, last value; 1 == 1.0 == True.
    assert_eq!(
        p("{1: 'a', 'k': 0, True: 'b', 1.0: 'c'}"),
        PyValue::Dict(vec![(PyValue::Int(1), s("c")), (s("k"), PyValue::Int(0))])
    );
}

#[test]
fn errors_say_what_and_where() {
    let cases = [
        ("", "empty"),
        ("{'a': }", "unexpected character"),
        ("{'a' 1}", "expected ':'"),
        ("[1, 2", "unexpected end"),
        ("'abc", "unterminated"),
        ("'a\nb'", "unterminated"),
        ("012", "leading zeros"),
        ("1__0", "invalid number"),
        ("1_", "invalid number"),
        ("1e", "invalid number"),
        ("1j", "complex"),
        ("0x", "invalid number"),
        ("foo", "not a literal"),
        ("{1, 2}", "set literals"),
        ("{[1]: 2}", "unhashable"),
        ("--1", "sign"),
        ("-True", "sign"),
        ("f'x'", "not a literal"),
        ("'a' b'b'", "mix bytes"),
        ("b'é'", "ASCII"),
        (r"'\ud800'", "surrogate"),
        (r"'\N{DASH}'", "\\N"),
        (r"'\x4'", "hex digits"),
        ("1 2", "after the literal"),
        ("{'a': 1} x", "after the literal"),
    ];
    for (text, want) in cases {
        match parse_literal(text) {
            Ok(v) => panic!("{text:?} parsed as {v:?}"),
            Err(e) => assert!(e.to_string().contains(want), "{text:?}: {e}"),
        }
    }
    let e = parse_literal("{'a': 1,\n 'b': @}").unwrap_err();
    assert_eq!((e.line, e.column, e.offset), (2, 7, 15), "{e}");
}

#[test]
fn depth_is_bounded() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse_literal(&ok).is_ok());
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(parse_literal(&deep).unwrap_err().reason.contains("nesting"));
    let huge = "(".repeat(100_000);
    assert!(parse_literal(&huge).is_err());
    let dicts = "{'a':".repeat(10_000);
    assert!(parse_literal(&dicts).is_err());
}

#[test]
fn kwargs() {
    assert_eq!(parse_kwargs(None).unwrap(), vec![]);
    assert_eq!(parse_kwargs(Some("  \n")).unwrap(), vec![]);
    assert_eq!(parse_kwargs(Some("None")).unwrap(), vec![]);
    assert_eq!(
        parse_kwargs(Some("{'b': 1, 'a': [2]}")).unwrap(),
        vec![("b".to_string(), PyValue::Int(1)), ("a".to_string(), PyValue::List(vec![PyValue::Int(2)]))]
    );
    assert!(parse_kwargs(Some("[1]")).unwrap_err().reason.contains("must be a dict"));
    assert!(parse_kwargs(Some("{1: 2}")).unwrap_err().reason.contains("str keys"));
    let base = parse_kwargs(Some("{'a': 1, 'b': 2, 'c': 3}")).unwrap();
    let over = parse_kwargs(Some("{'d': 4, 'b': 'x'}")).unwrap();
    assert_eq!(kwargs_repr(&merge_kwargs(&base, &over)), "{'a': 1, 'b': 'x', 'c': 3, 'd': 4}");
}

#[test]
fn repr_matches_python() {
    let cases = [
        ("{'a': 1}", "{'a': 1}"),
        ("(1,)", "(1,)"),
        ("[(), [], {}]", "[(), [], {}]"),
        ("\"it's\"", "\"it's\""),
        ("'both \\' and \"'", "'both \\' and \"'"),
        ("'\\x00\\x7f\\xa0\\xe9\\u200b\\n'", "'\\x00\\x7f\\xa0é\\u200b\\n'"),
        ("b'\\x00a\\'\"'", "b'\\x00a\\'\"'"),
        ("1e16", "1e+16"),
        ("1e15", "1000000000000000.0"),
        ("0.0001", "0.0001"),
        ("0.00001", "1e-05"),
        ("1.5e-7", "1.5e-07"),
        ("-0.0", "-0.0"),
        ("123456789.125", "123456789.125"),
        ("0.1", "0.1"),
        ("1e300", "1e+300"),
        ("2**0", ""),
    ];
    for (text, want) in cases {
        match parse_literal(text) {
            Ok(v) => assert_eq!(v.to_python_repr(), want, "{text:?}"),
            Err(_) => assert_eq!(want, "", "{text:?} should parse"),
        }
    }
}

/// Compares our reading and repr with CPython's `ast.literal_eval` + `repr`.
#[test]
fn agrees_with_cpython() {
    let inputs = [
        "{'a': 1, 'b': [1, 2.5, None, True, False], 'c': {'d': (1,), 'e': ()}}",
        "{'uni': 'héllo wörld ✓ 😀', 'esc': 'tab\\tnl\\ncr\\r\\x01\\u00e9\\U0001F600'}",
        "{'big': 123456789012345678901234567890, 'neg': -98765432109876543210, 'min': -9223372036854775808}",
        "{'f': [0.1, 1e16, 1e-5, 1.5e300, -0.0, 3.141592653589793, 1e22, 123456789012345.6]}",
        "{'hex': 0xDEAD_BEEF, 'oct': 0o777, 'bin': 0b1_0, 'und': 1_000}",
        "{'raw': r'C:\\path\\n', 'cat': 'a' \"b\" '''c''', 'q': \"it's\", 'qq': 'say \"hi\"'}",
        "{'nested': [[[[{'x': [(1, (2, (3,)))]}]]]], 'empty': [{}, [], ()]}",
        "{1: 'a', True: 'b', 1.0: 'c', (1, 2): 'd', None: 'e', b'k': 'f'}",
        "{'bytes': b'\\x00\\xff\\'\"', 'mixed': ('x', b'y', 1, 2.0)}",
        "{\n  'multi': 'line',\n  'trailing': [1, 2,],\n}",
        "{'s': '\\\\', 't': '\\'', 'u': \"\\\"\", 'v': '\\a\\b\\f\\v\\0\\101'}",
        "{'nbsp': 'a\\xa0b', 'zw': 'a\\u200bb', 'shy': '\\xad', 'del': '\\x7f'}",
    ];
    let lines = python3_lines(
        "import ast, json, sys\nfor line in sys.stdin:\n    print(repr(ast.literal_eval(json.loads(line))))\n",
        inputs.iter().map(|i| serde_json::to_string(i).expect("json")),
    );
    assert_eq!(lines.len(), inputs.len());
    for (input, py) in inputs.iter().zip(lines) {
        assert_eq!(p(input).to_python_repr(), py, "input {input}");
    }
}

pub(crate) fn arb_hashable() -> impl Strategy<Value = PyValue> {
    let leaf = prop_oneof![
        Just(PyValue::None),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(PyValue::Int),
        ".{0,12}".prop_map(PyValue::Str),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(PyValue::Bytes),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| proptest::collection::vec(inner, 0..3).prop_map(PyValue::Tuple))
}

/// Runs `python3 -c prog`, feeding it one input per line, and returns its output lines:
/// the real CPython is the reference for literal reading and for unpickling.
pub(crate) fn python3_lines(prog: &str, inputs: impl IntoIterator<Item = String>) -> Vec<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", prog])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed to run this test");
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        for line in inputs {
            writeln!(stdin, "{line}").expect("write");
        }
    }
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "python3 failed");
    String::from_utf8(out.stdout).expect("utf8").lines().map(str::to_string).collect()
}

/// Any value a literal can denote (dict keys hashable and distinct).
pub(crate) fn arb_value() -> impl Strategy<Value = PyValue> {
    let float = prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        Just(0.1),
        Just(1e16),
        Just(1e-5),
        Just(-0.0),
        (-1000i32..1000).prop_map(|i| f64::from(i) / 8.0),
    ];
    let big = (any::<bool>(), proptest::collection::vec(any::<u8>(), 9..40)).prop_map(|(neg, bytes)| {
        let b = BigInt::from_bytes_le(if neg { num_bigint::Sign::Minus } else { num_bigint::Sign::Plus }, &bytes);
        canonical_int(b)
    });
    let leaf = prop_oneof![
        Just(PyValue::None),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(PyValue::Int),
        big,
        float.prop_map(PyValue::Float),
        any::<String>().prop_map(PyValue::Str),
        "[ -~]{0,10}".prop_map(PyValue::Str),
        proptest::collection::vec(any::<u8>(), 0..10).prop_map(PyValue::Bytes),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(PyValue::List),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(PyValue::Tuple),
            proptest::collection::vec((arb_hashable(), inner), 0..6).prop_map(|pairs| {
                let mut items: Vec<(PyValue, PyValue)> = Vec::new();
                for (k, v) in pairs {
                    if !items.iter().any(|(k2, _)| k2.python_eq(&k)) {
                        items.push((k, v));
                    }
                }
                PyValue::Dict(items)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn repr_round_trips(v in arb_value()) {
        let text = v.to_python_repr();
        let back = parse_literal(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, v);
    }

    #[test]
    fn never_panics(text in "\\PC{0,40}") {
        let _ = parse_literal(&text);
    }

    #[test]
    fn never_panics_on_literal_like_text(text in "[\\[\\](){}:,'\"\\\\rbux0-9._eE+-]{0,30}") {
        let _ = parse_literal(&text);
    }
}
