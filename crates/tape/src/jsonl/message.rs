//! How a frame's message bytes are stored in a JSONL line, and how they are got back.
//!
//! A message that is valid JSON, on one line, with no whitespace at either end, is spliced
//! in verbatim as the `message` value, so a reader that captures the value's exact text
//! gets the bytes back. Valid JSON that spans lines or has whitespace at an end is spliced
//! with its line breaks turned into spaces, for `jq`, and its exact text is stored next to
//! it in `raw`. Everything else (not JSON, or nested too deep to splice) goes in `raw`
//! (UTF-8 text) or `raw_base64` (anything else). See `docs/tape-format.md`.

use serde_json::value::RawValue;

use crate::base64;

/// JSON values nested deeper than this are not spliced: the frame line around them adds a
/// level, and `serde_json` refuses more than 128.
const MAX_SPLICE_DEPTH: usize = 100;

/// Appends the message fields of a frame line (with a leading comma) to `out`.
///
/// `known_json`: a validating JSON parser has already accepted `bytes` as one JSON value
/// (so they are UTF-8 and follow the grammar); only the checks that parser does not make
/// (line breaks, whitespace at the ends, the nesting a frame line allows) are made here.
pub(crate) fn write_fields(bytes: &[u8], known_json: bool, out: &mut Vec<u8>) {
    match classify(bytes, known_json) {
        Storage::Splice => {
            out.extend_from_slice(b",\"message\":");
            out.extend_from_slice(bytes);
        }
        Storage::SpliceWithRaw(text) => {
            out.extend_from_slice(b",\"raw\":");
            push_json_str(out, text);
            out.extend_from_slice(b",\"message\":");
            out.extend(
                bytes
                    .iter()
                    .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
        }
        Storage::Raw(text) => {
            out.extend_from_slice(b",\"raw\":");
            push_json_str(out, text);
        }
        Storage::RawBase64 => {
            out.extend_from_slice(b",\"raw_base64\":\"");
            base64::encode_into(bytes, out);
            out.push(b'"');
        }
    }
}

/// The message's bytes, from the fields of a frame line. `raw_base64` wins over `raw`,
/// which wins over `message`; exactly one of `raw_base64` and `raw` may be present.
pub(crate) fn read_fields(
    message: Option<&RawValue>,
    raw: Option<String>,
    raw_base64: Option<&str>,
) -> Result<Vec<u8>, String> {
    match (message, raw, raw_base64) {
        (_, Some(_), Some(_)) => Err("both \"raw\" and \"raw_base64\"".to_owned()),
        (Some(_), None, Some(_)) => Err("both \"message\" and \"raw_base64\"".to_owned()),
        (_, None, Some(coded)) => base64::decode(coded).map_err(|e| format!("\"raw_base64\": {e}")),
        (_, Some(text), None) => Ok(text.into_bytes()),
        (Some(value), None, None) => Ok(value.get().as_bytes().to_vec()),
        (None, None, None) => Err("missing field `message` (or `raw` or `raw_base64`)".to_owned()),
    }
}

enum Storage<'a> {
    Splice,
    SpliceWithRaw(&'a str),
    Raw(&'a str),
    RawBase64,
}

fn classify(bytes: &[u8], known_json: bool) -> Storage<'_> {
    if known_json && splices_as_is(bytes) && within_splice_depth(bytes) {
        // The common case, without the UTF-8 and grammar passes the parser already made.
        return Storage::Splice;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Storage::RawBase64;
    };
    // `from_str`: the text is already known to be UTF-8, so it is not checked again.
    let valid = within_splice_depth(bytes) && serde_json::from_str::<&RawValue>(text).is_ok();
    if !valid {
        return Storage::Raw(text);
    }
    if splices_as_is(bytes) {
        Storage::Splice
    } else {
        Storage::SpliceWithRaw(text)
    }
}

/// Whether valid JSON `bytes` can stand in a line as they are: no line break anywhere and
/// no whitespace at either end.
fn splices_as_is(bytes: &[u8]) -> bool {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let edges = bytes.first().is_some_and(is_ws) || bytes.last().is_some_and(is_ws);
    !edges && memchr::memchr2(b'\n', b'\r', bytes).is_none()
}

/// Whether arrays and objects nest at most [`MAX_SPLICE_DEPTH`] deep. Counting the opening
/// brackets (a vectorized pass) bounds the depth from above; only when there are more than
/// the limit is the nesting worked out.
fn within_splice_depth(bytes: &[u8]) -> bool {
    let opening = bytes
        .iter()
        .map(|&b| usize::from(b == b'{' || b == b'['))
        .sum::<usize>();
    opening <= MAX_SPLICE_DEPTH || max_depth(bytes) <= MAX_SPLICE_DEPTH
}

/// The deepest nesting of arrays and objects, outside strings.
fn max_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Appends `text` as a JSON string.
pub(crate) fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing a JSON string into memory cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_fields(bytes, false, &mut out);
        let unchecked = String::from_utf8(out).unwrap();
        if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
            // Valid JSON is stored the same whether or not the caller vouches for it.
            let mut known = Vec::new();
            write_fields(bytes, true, &mut known);
            assert_eq!(String::from_utf8(known).unwrap(), unchecked, "{bytes:?}");
        }
        unchecked
    }

    #[test]
    fn compact_json_is_spliced() {
        assert_eq!(stored(br#"{"a": 1}"#), r#","message":{"a": 1}"#);
        assert_eq!(stored(b"[1,2]"), r#","message":[1,2]"#);
        assert_eq!(stored(b"7"), r#","message":7"#);
    }

    #[test]
    fn json_that_cannot_be_spliced_exactly_keeps_raw() {
        assert_eq!(
            stored(b"{\"a\":\r\n1}\n"),
            r#","raw":"{\"a\":\r\n1}\n","message":{"a":  1} "#
        );
        assert_eq!(stored(b" 1"), r#","raw":" 1","message": 1"#);
        let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
        assert_eq!(stored(deep.as_bytes()), format!(r#","raw":"{deep}""#));
    }

    #[test]
    fn non_json_goes_to_raw_or_base64() {
        assert_eq!(stored(b"not json"), r#","raw":"not json""#);
        assert_eq!(stored(b""), r#","raw":"""#);
        assert_eq!(stored(b"{} {}"), r#","raw":"{} {}""#);
        assert_eq!(stored(b"\xff\x00"), r#","raw_base64":"/wA=""#);
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(max_depth(br#"[{"a":"[[[\"{"}]"#), 2);
        // Many brackets in strings, shallow nesting: still spliced.
        let text = format!(r#"{{"a":"{}"}}"#, "[".repeat(300));
        assert_eq!(stored(text.as_bytes()), format!(",\"message\":{text}"));
    }

    #[test]
    fn wide_but_shallow_json_is_spliced() {
        let wide = format!("[{}]", vec!["{}"; 150].join(","));
        assert_eq!(stored(wide.as_bytes()), format!(",\"message\":{wide}"));
        let deep_enough = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            stored(deep_enough.as_bytes()),
            format!(",\"message\":{deep_enough}")
        );
    }
}
