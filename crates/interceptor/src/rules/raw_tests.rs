use shadowcat_mcp::Message;

use super::*;

#[test]
fn called_tool_reads_what_a_struct_with_a_name_reads() {
    let cases = [
        (r#"{"name":"echo"}"#, Some("echo")),
        (r#"{"arguments":{"name":"x"},"name":"echo"}"#, Some("echo")),
        (r#"{ "name" : "ec\"ho" }"#, Some("ec\"ho")),
        (r#"{"n\u0061me":"echo"}"#, Some("echo")),
        (r#"{"name":"echo","name":"other"}"#, None),
        (r#"{"name":5}"#, None),
        (r#"{"name":null}"#, None),
        (r#"{}"#, None),
        (r#"["echo"]"#, Some("echo")),
        (r#"{"name":"\ud800"}"#, None),
        (r#"{"name":"a","x":1e400}"#, Some("a")),
    ];
    for (params, want) in cases {
        let text = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#);
        let msg = Message::parse(text).expect("valid");
        assert_eq!(called_tool(&msg).as_deref(), want, "{params}");
    }
    let other =
        Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"x"}}"#)
            .expect("valid");
    assert_eq!(called_tool(&other), None);
    let note = Message::parse(r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}"#)
        .expect("valid");
    assert_eq!(called_tool(&note), None);
}
