//! A small XML-RPC codec (the 1999 specification at xmlrpc.com): method calls out, method
//! responses and faults in. Enough for the redirect services that speak it; it knows no
//! vendor's methods. Parsing uses roxmltree, which resolves no external entities.

use std::fmt::Write as _;

/// An XML-RPC value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `<int>` / `<i4>`.
    Int(i64),
    /// `<boolean>`.
    Bool(bool),
    /// `<string>`, or a value with no type element; also `<dateTime.iso8601>` and `<base64>`
    /// as their text.
    Str(String),
    /// `<double>`.
    Double(f64),
    /// `<array>`.
    Array(Vec<Value>),
    /// `<struct>`, members in document order.
    Struct(Vec<(String, Value)>),
    /// `<nil/>` (an extension some servers send).
    Nil,
}

impl Value {
    /// The string inside, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The member `name` of a struct.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// What a method response carried.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// The one return value.
    Value(Value),
    /// A fault: the server's code and message.
    Fault {
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
}

/// A body that is not an XML-RPC method response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an XML-RPC method response")]
pub struct Malformed;

/// Encodes a method call.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName><params>");
    for p in params {
        out.push_str("<param>");
        encode_value(&mut out, p);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>\n");
    out
}

fn encode_value(out: &mut String, value: &Value) {
    out.push_str("<value>");
    match value {
        Value::Int(i) => {
            let _ = write!(out, "<int>{i}</int>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::Str(s) => {
            out.push_str("<string>");
            escape_into(out, s);
            out.push_str("</string>");
        }
        Value::Double(d) => {
            let _ = write!(out, "<double>{d}</double>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                encode_value(out, item);
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (name, v) in members {
                out.push_str("<member><name>");
                escape_into(out, name);
                out.push_str("</name>");
                encode_value(out, v);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// Decodes a method response.
pub fn decode_response(body: &[u8]) -> Result<Response, Malformed> {
    let text = std::str::from_utf8(body).map_err(|_| Malformed)?;
    let doc = roxmltree::Document::parse(text).map_err(|_| Malformed)?;
    let root = doc.root_element();
    if root.tag_name().name() != "methodResponse" {
        return Err(Malformed);
    }
    if let Some(fault) = child(root, "fault") {
        let value = decode_value(child(fault, "value").ok_or(Malformed)?)?;
        let code = match value.member("faultCode") {
            Some(Value::Int(i)) => *i,
            _ => return Err(Malformed),
        };
        let message = value
            .member("faultString")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        return Ok(Response::Fault { code, message });
    }
    let param = child(root, "params")
        .and_then(|p| child(p, "param"))
        .ok_or(Malformed)?;
    Ok(Response::Value(decode_value(
        child(param, "value").ok_or(Malformed)?,
    )?))
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    node.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

fn decode_value(value: roxmltree::Node<'_, '_>) -> Result<Value, Malformed> {
    let Some(typed) = value.children().find(|c| c.is_element()) else {
        return Ok(Value::Str(text_of(value)));
    };
    let text = || text_of(typed);
    Ok(match typed.tag_name().name() {
        "int" | "i4" | "i8" => Value::Int(text().trim().parse().map_err(|_| Malformed)?),
        "boolean" => match text().trim() {
            "1" => Value::Bool(true),
            "0" => Value::Bool(false),
            _ => return Err(Malformed),
        },
        "string" | "dateTime.iso8601" | "base64" => Value::Str(text()),
        "double" => Value::Double(text().trim().parse().map_err(|_| Malformed)?),
        "nil" => Value::Nil,
        "array" => {
            let data = child(typed, "data").ok_or(Malformed)?;
            let items = data
                .children()
                .filter(|c| c.is_element() && c.tag_name().name() == "value")
                .map(decode_value)
                .collect::<Result<Vec<_>, _>>()?;
            Value::Array(items)
        }
        "struct" => {
            let mut members = Vec::new();
            for m in typed
                .children()
                .filter(|c| c.is_element() && c.tag_name().name() == "member")
            {
                let name = child(m, "name").map(text_of).ok_or(Malformed)?;
                let v = decode_value(child(m, "value").ok_or(Malformed)?)?;
                members.push((name, v));
            }
            Value::Struct(members)
        }
        _ => return Err(Malformed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_encoded_and_escaped() {
        let body = encode_call(
            "autoprov.registerDevice",
            &[Value::Str("A&B<".into()), Value::Int(3), Value::Bool(true)],
        );
        assert_eq!(
            body,
            "<?xml version=\"1.0\"?>\n<methodCall><methodName>autoprov.registerDevice</methodName>\
             <params><param><value><string>A&amp;B&lt;</string></value></param>\
             <param><value><int>3</int></value></param>\
             <param><value><boolean>1</boolean></value></param></params></methodCall>\n"
        );
        // What we send parses as XML.
        assert!(roxmltree::Document::parse(&body).is_ok());
    }

    #[test]
    fn responses_decode() {
        let body = br#"<?xml version="1.0"?>
<methodResponse><params><param><value><array><data>
<value><boolean>0</boolean></value><value>mac_already_in_use:7C2F80E0D605-AB12</value>
</data></array></value></param></params></methodResponse>"#;
        assert_eq!(
            decode_response(body),
            Ok(Response::Value(Value::Array(vec![
                Value::Bool(false),
                Value::Str("mac_already_in_use:7C2F80E0D605-AB12".into()),
            ])))
        );
    }

    #[test]
    fn faults_decode() {
        let body = br#"<methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>4</int></value></member>
<member><name>faultString</name><value><string>Too many parameters.</string></value></member>
</struct></value></fault></methodResponse>"#;
        assert_eq!(
            decode_response(body),
            Ok(Response::Fault {
                code: 4,
                message: "Too many parameters.".into()
            })
        );
    }

    proptest::proptest! {
        #[test]
        fn any_body_decodes_or_is_malformed(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = decode_response(&body);
        }

        #[test]
        fn strings_survive_a_round_trip(text in "\\PC{0,40}", n in proptest::num::i32::ANY) {
            // A call's params, answered back as a response, decode to what was sent.
            let call = encode_call("m", &[Value::Array(vec![Value::Str(text.clone()), Value::Int(n.into())])]);
            let params = call
                .split_once("<params>")
                .and_then(|(_, rest)| rest.split_once("</params>"))
                .map(|(inner, _)| inner.to_owned())
                .unwrap_or_default();
            let response = format!("<methodResponse><params>{params}</params></methodResponse>");
            proptest::prop_assert_eq!(
                decode_response(response.as_bytes()),
                Ok(Response::Value(Value::Array(vec![Value::Str(text), Value::Int(n.into())])))
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(decode_response(b"<html>oops</html>"), Err(Malformed));
        assert_eq!(decode_response(b"\xff\xfe"), Err(Malformed));
        assert_eq!(decode_response(b"<methodResponse/>"), Err(Malformed));
        assert_eq!(
            decode_response(b"<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>"),
            Err(Malformed)
        );
    }
}
