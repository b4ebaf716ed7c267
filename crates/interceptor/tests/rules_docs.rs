//! Every example in docs/rules.md loads.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shadowcat_interceptor::RuleSet;

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

#[test]
fn every_example_in_the_rules_guide_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut checked = 0;
    let blocks = doc.split("```").skip(1).step_by(2);
    for block in blocks {
        let (lang, body) = block.split_once('\n').unwrap();
        let files: Vec<String> = match lang {
            "json" => {
                RuleSet::from_json_str(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
                checked += 1;
                continue;
            }
            "yaml" if body.starts_with("rules:") || body.starts_with("version:") => {
                vec![body.to_owned()]
            }
            "yaml" if body.starts_with("action:") => {
                // Several alternatives, each starting at an unindented `action:`.
                let mut chunks: Vec<String> = Vec::new();
                for line in body.lines() {
                    if line.starts_with("action:") {
                        chunks.push(String::new());
                    }
                    let last = chunks.last_mut().unwrap();
                    last.push_str(line);
                    last.push('\n');
                }
                chunks
                    .iter()
                    .map(|c| format!("rules:\n  - id: example\n{}", indent(c, "    ")))
                    .collect()
            }
            "yaml" if body.starts_with("actions:") => {
                vec![format!("rules:\n  - id: example\n{}", indent(body, "    "))]
            }
            "yaml" if body.starts_with("json:") => vec![format!(
                "rules:\n  - id: example\n    match:\n{}    action: {{type: continue}}\n",
                indent(body, "      ")
            )],
            "yaml" => panic!("an example of an unknown shape:\n{body}"),
            _ => continue,
        };
        for file in files {
            RuleSet::from_yaml_str(&file).unwrap_or_else(|e| panic!("{e}\n{file}"));
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} examples found");
}
