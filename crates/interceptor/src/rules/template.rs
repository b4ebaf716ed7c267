//! Templates in mock answers, error messages and `set` values: `{{request.id}}`,
//! `{{request.params.arguments.city}}`, `{{session}}`, `{{transport}}`, `{{direction}}`,
//! `{{rule.id}}`.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

/// What a template can refer to while rendering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TemplateEnv<'a> {
    /// The intercepted message as JSON (for a mock: the request).
    pub(crate) request: Option<&'a Value>,
    pub(crate) session: &'a str,
    pub(crate) transport: &'a str,
    pub(crate) direction: &'a str,
    pub(crate) rule: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
enum Root {
    Request,
    Session,
    Transport,
    Direction,
    RuleId,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Field(Root, Vec<Seg>),
}

/// A string with `{{…}}` placeholders.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; names what is wrong with a placeholder.
    pub(crate) fn compile(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("template {text:?}: `{{{{` without a closing `}}}}`"))?;
            let (root, path) =
                parse_field(after[..end].trim()).map_err(|e| format!("template {text:?}: {e}"))?;
            parts.push(Part::Field(root, path));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Whether it has placeholders.
    pub(crate) fn is_templated(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(..)))
    }

    /// Whether rendering reads the message.
    pub(crate) fn needs_request(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field(Root::Request, _)))
    }

    /// Renders to a JSON value: a template that is exactly one placeholder gives the value
    /// it refers to (a number stays a number; missing is `null`); otherwise a string.
    pub(crate) fn render_value(&self, env: &TemplateEnv<'_>) -> Value {
        if let [Part::Field(root, path)] = self.parts.as_slice() {
            return resolve(root, path, env).unwrap_or(Value::Null);
        }
        Value::String(self.render_string(env))
    }

    /// Renders to text: strings without quotes, other values as JSON, missing as nothing.
    pub(crate) fn render_string(&self, env: &TemplateEnv<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Field(root, path) => match resolve(root, path, env) {
                    Some(Value::String(s)) => out.push_str(&s),
                    Some(Value::Null) | None => {}
                    Some(v) => out.push_str(&v.to_string()),
                },
            }
        }
        out
    }
}

fn parse_field(field: &str) -> Result<(Root, Vec<Seg>), String> {
    let (head, mut rest) = match field.find(['.', '[']) {
        Some(i) => (&field[..i], &field[i..]),
        None => (field, ""),
    };
    let root = match head {
        "request" => Root::Request,
        "session" => Root::Session,
        "transport" => Root::Transport,
        "direction" => Root::Direction,
        "rule" if rest == ".id" => return Ok((Root::RuleId, Vec::new())),
        _ => {
            return Err(format!(
                "unknown placeholder `{field}` (use request.…, session, transport, direction or rule.id)"
            ));
        }
    };
    if root != Root::Request && !rest.is_empty() {
        return Err(format!("`{head}` has no fields (in `{field}`)"));
    }
    let mut path = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("empty field name in `{field}`"));
            }
            path.push(Seg::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("`[` without `]` in `{field}`"))?;
            let index = r[..end]
                .trim()
                .parse()
                .map_err(|_| format!("`[{}]` is not an array index in `{field}`", &r[..end]))?;
            path.push(Seg::Index(index));
            rest = &r[end + 1..];
        } else {
            return Err(format!("unexpected `{rest}` in `{field}`"));
        }
    }
    Ok((root, path))
}

fn resolve(root: &Root, path: &[Seg], env: &TemplateEnv<'_>) -> Option<Value> {
    let text = |s: &str| Some(Value::String(s.to_owned()));
    match root {
        Root::Session => text(env.session),
        Root::Transport => text(env.transport),
        Root::Direction => text(env.direction),
        Root::RuleId => text(env.rule),
        Root::Request => {
            let mut v = env.request?;
            for seg in path {
                v = match seg {
                    Seg::Key(k) => v.get(k.as_str())?,
                    Seg::Index(i) => v.get(*i)?,
                };
            }
            Some(v.clone())
        }
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::compile(&text).map_err(de::Error::custom)
    }
}

/// A JSON value whose strings may be templates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TValue {
    /// No placeholders anywhere inside.
    Lit(Value),
    Str(Template),
    Array(Vec<TValue>),
    Object(Vec<(String, TValue)>),
}

impl TValue {
    pub(crate) fn compile(value: Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => {
                let t = Template::compile(&s)?;
                if t.is_templated() {
                    Self::Str(t)
                } else {
                    Self::Lit(Value::String(s))
                }
            }
            Value::Array(items) => {
                let items = items
                    .into_iter()
                    .map(Self::compile)
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|i| matches!(i, Self::Lit(_))) {
                    Self::Lit(Value::Array(
                        items.into_iter().map(Self::into_lit).collect(),
                    ))
                } else {
                    Self::Array(items)
                }
            }
            Value::Object(map) => {
                let fields = map
                    .into_iter()
                    .map(|(k, v)| Self::compile(v).map(|v| (k, v)))
                    .collect::<Result<Vec<_>, _>>()?;
                if fields.iter().all(|(_, v)| matches!(v, Self::Lit(_))) {
                    Self::Lit(Value::Object(
                        fields.into_iter().map(|(k, v)| (k, v.into_lit())).collect(),
                    ))
                } else {
                    Self::Object(fields)
                }
            }
            other => Self::Lit(other),
        })
    }

    fn into_lit(self) -> Value {
        match self {
            Self::Lit(v) => v,
            _ => Value::Null,
        }
    }

    pub(crate) fn needs_request(&self) -> bool {
        match self {
            Self::Lit(_) => false,
            Self::Str(t) => t.needs_request(),
            Self::Array(items) => items.iter().any(Self::needs_request),
            Self::Object(fields) => fields.iter().any(|(_, v)| v.needs_request()),
        }
    }

    pub(crate) fn render(&self, env: &TemplateEnv<'_>) -> Value {
        match self {
            Self::Lit(v) => v.clone(),
            Self::Str(t) => t.render_value(env),
            Self::Array(items) => Value::Array(items.iter().map(|i| i.render(env)).collect()),
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.render(env)))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for TValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Self::compile(value).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(request: &Value) -> TemplateEnv<'_> {
        TemplateEnv {
            request: Some(request),
            session: "s1",
            transport: "stdio",
            direction: "client_to_server",
            rule: "r",
        }
    }

    #[test]
    fn single_placeholder_keeps_the_type_and_text_interpolates() {
        let req = json!({"id": 7, "params": {"arguments": {"city": "Oslo"}, "xs": [1, 2]}});
        let e = env(&req);
        assert_eq!(
            Template::compile("{{request.id}}")
                .unwrap()
                .render_value(&e),
            json!(7)
        );
        assert_eq!(
            Template::compile("{{ request.params.xs[1] }}")
                .unwrap()
                .render_value(&e),
            json!(2)
        );
        let t = Template::compile(
            "Weather in {{request.params.arguments.city}} ({{session}}, {{rule.id}})",
        )
        .unwrap();
        assert_eq!(t.render_value(&e), json!("Weather in Oslo (s1, r)"));
        assert_eq!(
            Template::compile("{{request.nope}}")
                .unwrap()
                .render_value(&e),
            Value::Null
        );
        assert_eq!(
            Template::compile("x{{request.nope}}y")
                .unwrap()
                .render_string(&e),
            "xy"
        );
        assert_eq!(
            Template::compile("{{request.params.xs}}!")
                .unwrap()
                .render_string(&e),
            "[1,2]!"
        );
    }

    #[test]
    fn bad_placeholders_are_named() {
        for (text, needle) in [
            ("{{request.id", "without a closing"),
            ("{{reqest.id}}", "unknown placeholder `reqest.id`"),
            ("{{session.x}}", "`session` has no fields"),
            ("{{request.a[x]}}", "not an array index"),
            ("{{request..a}}", "empty field name"),
            ("{{rule}}", "unknown placeholder"),
        ] {
            let err = Template::compile(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn values_without_placeholders_stay_literal() {
        let v = TValue::compile(json!({"a": ["x", 1], "b": {"c": "{{request.id}}"}})).unwrap();
        let TValue::Object(fields) = &v else {
            panic!("{v:?}")
        };
        assert!(matches!(fields[0].1, TValue::Lit(_)));
        assert!(v.needs_request());
        let req = json!({"id": "abc"});
        assert_eq!(
            v.render(&env(&req)),
            json!({"a": ["x", 1], "b": {"c": "abc"}})
        );
    }
}
