//! `modify`: set, remove and rename at JSONPaths in a message.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json_path::PathElement;

use super::de::{OneOrMany, Path};
use super::template::{TValue, TemplateEnv};

/// The changes one `modify` action makes, in this order: remove, rename, set.
#[derive(Debug, Default)]
pub(crate) struct Modify {
    remove: Vec<Path>,
    rename: Vec<(Path, String)>,
    set: Vec<(SetPath, TValue)>,
}

/// A `set` target: the JSONPath, and its plain steps when it names one place (`$.a.b[0]`),
/// so that a missing member can be created.
#[derive(Debug)]
pub(crate) struct SetPath {
    path: Path,
    steps: Option<Vec<Step>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Index(usize),
    Key(String),
}

/// `set:` as written: JSONPath → value, in file order.
#[derive(Debug, Default)]
pub(crate) struct SetList(Vec<(SetPath, TValue)>);

/// `rename:` as written: JSONPath → new member name, in file order.
#[derive(Debug, Default)]
pub(crate) struct RenameList(Vec<(Path, String)>);

impl Modify {
    pub(crate) fn new(
        set: Option<SetList>,
        remove: Option<OneOrMany<Path>>,
        rename: Option<RenameList>,
    ) -> Self {
        Self {
            remove: remove.map(|r| r.0).unwrap_or_default(),
            rename: rename.map(|r| r.0).unwrap_or_default(),
            set: set.map(|s| s.0).unwrap_or_default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.rename.is_empty() && self.set.is_empty()
    }

    /// Applies the changes to `value`; set values are rendered against `env` first.
    pub(crate) fn apply(&self, value: &mut Value, env: &TemplateEnv<'_>) {
        let rendered: Vec<Value> = self.set.iter().map(|(_, v)| v.render(env)).collect();
        // All places are found first, so that removing one does not move another.
        let mut doomed: Vec<Vec<Step>> = self
            .remove
            .iter()
            .flat_map(|path| locations(&path.path, value))
            .collect();
        doomed.sort();
        doomed.dedup();
        for loc in doomed.into_iter().rev() {
            if let Some((last, parent)) = loc.split_last() {
                match (navigate(value, parent), last) {
                    (Some(Value::Object(m)), Step::Key(k)) => {
                        m.remove(k);
                    }
                    (Some(Value::Array(a)), Step::Index(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        for (path, to) in &self.rename {
            for loc in locations(&path.path, value).into_iter().rev() {
                if let Some((Step::Key(k), parent)) = loc.split_last()
                    && let Some(Value::Object(m)) = navigate(value, parent)
                    && let Some(v) = m.remove(k)
                {
                    m.insert(to.clone(), v);
                }
            }
        }
        for ((target, _), new) in self.set.iter().zip(rendered) {
            let found = locations(&target.path.path, value);
            if found.is_empty() {
                if let Some(steps) = &target.steps {
                    create(value, steps, new);
                }
                continue;
            }
            for loc in found {
                if let Some(slot) = navigate(value, &loc) {
                    *slot = new.clone();
                }
            }
        }
    }
}

/// Where `path` selects values in `value`, sorted (so that reversed, later array elements
/// come before earlier ones) and without repeats.
fn locations(path: &serde_json_path::JsonPath, value: &Value) -> Vec<Vec<Step>> {
    let mut found: Vec<Vec<Step>> = path
        .query_located(value)
        .iter()
        .map(|node| {
            node.location()
                .iter()
                .map(|e| match e {
                    PathElement::Name(n) => Step::Key((*n).to_owned()),
                    PathElement::Index(i) => Step::Index(*i),
                })
                .collect()
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

fn navigate<'v>(mut value: &'v mut Value, steps: &[Step]) -> Option<&'v mut Value> {
    for step in steps {
        value = match step {
            Step::Key(k) => value.get_mut(k.as_str())?,
            Step::Index(i) => value.get_mut(*i)?,
        };
    }
    Some(value)
}

/// Sets a place that does not exist yet: missing object members along the way are created
/// as objects; an array index may only be the next one (appending).
fn create(value: &mut Value, steps: &[Step], new: Value) {
    let Some((last, parents)) = steps.split_last() else {
        *value = new;
        return;
    };
    let mut at = value;
    for step in parents {
        at = match (at, step) {
            (Value::Object(m), Step::Key(k)) => m
                .entry(k.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new())),
            (Value::Array(a), Step::Index(i)) if *i < a.len() => &mut a[*i],
            _ => return,
        };
    }
    match (at, last) {
        (Value::Object(m), Step::Key(k)) => {
            m.insert(k.clone(), new);
        }
        (Value::Array(a), Step::Index(i)) if *i < a.len() => a[*i] = new,
        (Value::Array(a), Step::Index(i)) if *i == a.len() => a.push(new),
        _ => {}
    }
}

/// The plain steps of a path that names one place: `$`, then `.name`, `['name']`,
/// `["name"]` or `[index]`, repeated.
fn plain_steps(source: &str) -> Option<Vec<Step>> {
    let mut rest = source.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            match quoted {
                Some(name) if !name.contains(['\\', '\'', '"']) => {
                    steps.push(Step::Key(name.to_owned()));
                }
                Some(_) => return None,
                None => steps.push(Step::Index(inner.parse().ok()?)),
            }
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Reads a map of JSONPath → `T` in file order.
fn path_map<'de, D, T, F>(d: D, what: &'static str, make: F) -> Result<Vec<(Path, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    F: FnMut(&Path) -> Result<(), String>,
{
    struct V<T, F>(&'static str, F, std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>, F: FnMut(&Path) -> Result<(), String>> Visitor<'de> for V<T, F> {
        type Value = Vec<(Path, T)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = Path::new(&key).map_err(de::Error::custom)?;
                (self.1)(&path).map_err(de::Error::custom)?;
                let value = map.next_value::<T>()?;
                out.push((path, value));
            }
            Ok(out)
        }
    }
    d.deserialize_map(V(what, make, std::marker::PhantomData))
}

impl<'de> Deserialize<'de> for SetList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = path_map::<D, TValue, _>(d, "a map of JSONPath to value", |_| Ok(()))?;
        Ok(Self(
            pairs
                .into_iter()
                .map(|(path, v)| {
                    let steps = plain_steps(&path.source);
                    (SetPath { path, steps }, v)
                })
                .collect(),
        ))
    }
}

impl<'de> Deserialize<'de> for RenameList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = path_map::<D, String, _>(d, "a map of JSONPath to new member name", |p| {
            if plain_steps(&p.source).is_some_and(|s| s.is_empty()) {
                Err(format!("{}: the whole message cannot be renamed", p.source))
            } else {
                Ok(())
            }
        })?;
        Ok(Self(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn modify(yaml: &str) -> Modify {
        #[derive(Deserialize)]
        struct M {
            set: Option<SetList>,
            remove: Option<OneOrMany<Path>>,
            rename: Option<RenameList>,
        }
        let m: M = serde_yaml::from_str(yaml).unwrap();
        Modify::new(m.set, m.remove, m.rename)
    }

    fn apply(m: &Modify, mut v: Value) -> Value {
        let orig = v.clone();
        let env = TemplateEnv {
            request: Some(&orig),
            session: "s",
            transport: "stdio",
            direction: "client_to_server",
            rule: "r",
        };
        m.apply(&mut v, &env);
        v
    }

    #[test]
    fn set_creates_missing_members_and_replaces_existing_ones() {
        let m = modify(
            r#"
set:
  "$.params.arguments.x": 1
  "$.params.new.deep": "{{request.id}}"
  "$.params.items[*]": 0
  "$.params.list[2]": "appended"
  "$.params.list[9]": "ignored"
"#,
        );
        let out = apply(
            &m,
            json!({"id": 4, "params": {"arguments": {}, "items": [5, 6], "list": [1, 2]}}),
        );
        assert_eq!(
            out,
            json!({"id": 4, "params": {
                "arguments": {"x": 1}, "new": {"deep": 4}, "items": [0, 0],
                "list": [1, 2, "appended"]}})
        );
    }

    #[test]
    fn remove_and_rename_handle_several_matches() {
        let m = modify(
            r#"
remove: ["$.params.xs[0]", "$.params.xs[2]", "$.params.gone"]
rename: {"$.params.old": "new", "$..secret": "hidden"}
"#,
        );
        let out = apply(
            &m,
            json!({"params": {"xs": [0, 1, 2, 3], "gone": true, "old": "v",
                              "a": {"secret": 1}, "b": [{"secret": 2}]}}),
        );
        assert_eq!(
            out,
            json!({"params": {"xs": [1, 3], "new": "v",
                              "a": {"hidden": 1}, "b": [{"hidden": 2}]}})
        );
    }

    #[test]
    fn plain_steps_only_for_single_places() {
        assert_eq!(plain_steps("$"), Some(vec![]));
        assert_eq!(
            plain_steps("$.a['b c'][3]"),
            Some(vec![
                Step::Key("a".into()),
                Step::Key("b c".into()),
                Step::Index(3)
            ])
        );
        assert_eq!(plain_steps("$.a[*]"), None);
        assert_eq!(plain_steps("$..a"), None);
        assert_eq!(plain_steps("$.a[?@.b]"), None);
    }
}
