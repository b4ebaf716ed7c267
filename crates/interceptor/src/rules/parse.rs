//! Reading rule files (YAML or JSON) into the checked model, with errors that say where.

use std::path::Path;
use std::sync::LazyLock;

use serde_path_to_error::Segment;

use super::model::FileSpec;
use crate::RuleError;

/// The syntax of a rule file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleFormat {
    /// YAML (1.2; JSON is valid YAML too).
    Yaml,
    /// JSON.
    Json,
}

impl RuleFormat {
    /// The format a file name implies: `.json` is JSON, anything else YAML.
    pub fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Yaml,
        }
    }
}

/// The path serde_yaml puts before a message (`rules[1].match.method: `).
static YAML_PATH: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^(?:rules|version|seed)(?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_]*)*: ")
        .expect("a valid regex")
});

static AT_LINE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r" at line \d+ column \d+").expect("a valid regex"));

/// Reads and checks a rule file; the error names the line, column, rule and field.
pub(crate) fn parse(
    text: &str,
    format: RuleFormat,
    file: Option<&Path>,
) -> Result<FileSpec, RuleError> {
    let outcome = match format {
        RuleFormat::Yaml => {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize::<_, FileSpec>(de).map_err(|e| {
                let path = e.path().clone();
                let inner = e.into_inner();
                let at = inner
                    .location()
                    .map(|l| (to_u32(l.line()), to_u32(l.column())));
                (Some(path), inner.to_string(), at)
            })
        }
        RuleFormat::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize::<_, FileSpec>(&mut de)
                .map_err(|e| {
                    let path = e.path().clone();
                    let inner = e.into_inner();
                    let at =
                        (inner.line() > 0).then(|| (to_u32(inner.line()), to_u32(inner.column())));
                    (Some(path), inner.to_string(), at)
                })
                .and_then(|spec| match de.end() {
                    Ok(()) => Ok(spec),
                    Err(e) => Err((
                        None,
                        e.to_string(),
                        Some((to_u32(e.line()), to_u32(e.column()))),
                    )),
                })
        }
    };
    let spec = outcome.map_err(|(path, message, at)| {
        let (rule_index, field) = path.as_ref().map(split_path).unwrap_or_default();
        let rule = rule_index.and_then(|i| rule_id_at(text, format, i));
        let mut message = AT_LINE.replace_all(&message, "").into_owned();
        if let Some(prefix) = YAML_PATH.find(&message) {
            message = message[prefix.end()..].to_owned();
        }
        RuleError {
            file: file.map(Path::to_path_buf),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            rule,
            field,
            message,
        }
    })?;
    check_unique_ids(&spec, text, format).map_err(|mut e| {
        e.file = file.map(Path::to_path_buf);
        e
    })?;
    Ok(spec)
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Which rule (by index) and which field inside it (or inside the file) a path names.
fn split_path(path: &serde_path_to_error::Path) -> (Option<usize>, Option<String>) {
    let segments: Vec<&Segment> = path.iter().collect();
    let (index, rest) = match segments.as_slice() {
        [Segment::Map { key }, Segment::Seq { index }, rest @ ..] if key == "rules" => {
            (Some(*index), rest)
        }
        all => (None, all),
    };
    let mut field = String::new();
    for seg in rest {
        match seg {
            Segment::Map { key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Enum { variant } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    (index, (!field.is_empty()).then_some(field))
}

/// The id of the rule at `index`, read leniently (the file as a whole may be invalid).
fn rule_id_at(text: &str, format: RuleFormat, index: usize) -> Option<String> {
    let value: serde_json::Value = match format {
        RuleFormat::Yaml => serde_yaml::from_str(text).ok()?,
        RuleFormat::Json => serde_json::from_str(text).ok()?,
    };
    value
        .get("rules")?
        .get(index)?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

fn check_unique_ids(spec: &FileSpec, text: &str, format: RuleFormat) -> Result<(), RuleError> {
    for (i, rule) in spec.rules.iter().enumerate() {
        let earlier = spec.rules[..i].iter().filter(|r| r.id == rule.id).count();
        if let Some(first) = spec.rules[..i].iter().position(|r| r.id == rule.id) {
            let at = locate_id(text, format, &rule.id, earlier);
            return Err(RuleError {
                file: None,
                line: at.map(|a| a.0),
                column: at.map(|a| a.1),
                rule: Some(rule.id.clone()),
                field: Some("id".into()),
                message: format!(
                    "duplicate rule id: rule {} has it too (ids must be unique)",
                    first + 1
                ),
            });
        }
    }
    Ok(())
}

/// Where the `occurrence`-th (0-based) `id: <id>` is written in the text.
fn locate_id(text: &str, format: RuleFormat, id: &str, occurrence: usize) -> Option<(u32, u32)> {
    let json_id = serde_json::to_string(id).ok()?;
    let pattern = match format {
        RuleFormat::Yaml => format!(
            r#"(?m)(?:^|[\s{{,-])(id)\s*:\s*(?:{}|"{}"|'{}')\s*(?:[,}}#]|$)"#,
            regex::escape(id),
            regex::escape(id),
            regex::escape(id)
        ),
        RuleFormat::Json => format!(r#"("id")\s*:\s*{}"#, regex::escape(&json_id)),
    };
    let re = regex::Regex::new(&pattern).ok()?;
    let offset = re.captures_iter(text).nth(occurrence)?.get(1)?.start();
    let line_start = text[..offset].rfind('\n').map_or(0, |n| n + 1);
    let line = u32::try_from(text[..offset].matches('\n').count() + 1).ok()?;
    let column = u32::try_from(text[line_start..offset].chars().count() + 1).ok()?;
    Some((line, column))
}
