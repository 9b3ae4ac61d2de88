//! The detection catalog: the built-in definitions shipped in `detections/` (compiled into the binary) plus
//! a user's own folder, whose files replace built-ins of the same name or add new ones.

use std::path::Path;

use super::definition::Detection;

/// The built-in definitions, every file of `detections/` in name order (listed by `build.rs`): (file name,
/// TOML).
pub const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_detections.rs"));

/// The built-in catalog.
pub fn builtin() -> Vec<Detection> {
    BUILTIN
        .iter()
        .map(|(file, text)| {
            Detection::from_toml(text, file).expect("built-in detections are valid (tested)")
        })
        .collect()
}

/// The built-in catalog overlaid with every `*.toml` in `dir` (same name replaces, new names are added),
/// minus the `disabled` names. Reports every invalid file at once.
pub fn load(dir: Option<&Path>, disabled: &[String]) -> Result<Vec<Detection>, String> {
    let mut all = builtin();
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read detections folder {}: {e}", dir.display()))?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut problems = Vec::new();
        for f in files {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: {e}", f.display()));
                    continue;
                }
            };
            match Detection::from_toml(&text, &f.display().to_string()) {
                Ok(d) => match all.iter_mut().find(|x| x.name == d.name) {
                    Some(existing) => *existing = d,
                    None => all.push(d),
                },
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
    }
    for name in disabled {
        if !all.iter().any(|d| &d.name == name) {
            return Err(format!("cannot disable unknown detection {name:?}"));
        }
    }
    all.retain(|d| !disabled.contains(&d.name));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_uniquely_named() {
        let all = builtin();
        assert_eq!(all.len(), BUILTIN.len());
        let mut names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for (file, _) in BUILTIN {
            assert!(
                all.iter().any(|d| format!("{}.toml", d.name) == *file),
                "{file} is misnamed"
            );
        }
    }

    #[test]
    fn user_folder_overrides_adds_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (_, brute_force) = BUILTIN
            .iter()
            .find(|(file, _)| *file == "ssh_brute_force.toml")
            .unwrap();
        let mut custom = brute_force.replace("failures >= 5\"", "failures >= 50\"");
        std::fs::write(dir.path().join("a.toml"), &custom).unwrap();
        custom = custom.replace("name = \"ssh_brute_force\"", "name = \"my_rule\"");
        std::fs::write(dir.path().join("b.toml"), &custom).unwrap();
        let all = load(Some(dir.path()), &["ssh_root_login".into()]).unwrap();
        assert_eq!(all.len(), BUILTIN.len());
        assert!(all.iter().any(|d| d.conditions[0] == "failures >= 50"));
        assert!(all.iter().any(|d| d.name == "my_rule"));
        assert!(!all.iter().any(|d| d.name == "ssh_root_login"));
        std::fs::write(dir.path().join("c.toml"), "name = \"Bad Name\"").unwrap();
        let err = load(Some(dir.path()), &[]).unwrap_err();
        assert!(err.contains("c.toml"), "{err}");
    }
}
