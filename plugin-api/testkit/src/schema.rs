//! A driver's declared configuration schema held against the driver itself: the schema
//! conventions and the driver's own `validate` ([`trib_plugin_api::support::schema::check`]), the
//! fields its configuration reader actually reads, and (optionally) the field table of its README.
//!
//! One call from a driver's tests: `trib_plugin_testkit::schema::assert_agrees::<MyDriver>(Some(include_str!("../README.md")))`.

use serde_json::Value;
use trib_plugin_api::{
    driver::{Driver, Host},
    support::{fields::record_reads, schema},
};

/// Everything that disagrees, one line each; empty when the schema, the driver and the README
/// agree. `readme` is a driver README whose "## Fields" section starts with a table whose first
/// column names the fields in backticks (`None` skips that comparison).
pub fn problems<T: Driver>(readme: Option<&str>) -> Vec<String> {
    let Some(text) = T::config_schema() else {
        return vec!["the driver declares no configuration schema".into()];
    };
    let parsed = match schema::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => return vec![e],
    };
    let validate = |config: &str| match T::create(Host::detached()) {
        Ok(driver) => driver.validate(config),
        Err(e) => vec![trib_plugin_api::driver::FieldError::new("", format!("create failed: {e}"))],
    };
    let mut out = schema::check(&parsed, validate);
    let declared = properties(&parsed);
    let example = Value::Object(schema::example(&parsed)).to_string();
    let (errors, read) = record_reads(|| validate(&example));
    if !errors.is_empty() {
        out.push(format!("the example configuration {example} has field errors: {errors:?}"));
    }
    if sorted(read.clone()) != declared {
        out.push(format!("the reader reads {:?}, the schema declares {declared:?}", sorted(read)));
    }
    if let Some(readme) = readme {
        match readme_fields(readme) {
            Some(listed) if listed == declared => {}
            Some(listed) => out.push(format!("the README lists {listed:?}, the schema declares {declared:?}")),
            None => out.push("the README has no '## Fields' table".into()),
        }
    }
    out
}

/// Fails the test with every line of [`problems`].
pub fn assert_agrees<T: Driver>(readme: Option<&str>) {
    let problems = problems::<T>(readme);
    assert!(problems.is_empty(), "the configuration schema disagrees:\n{}", problems.join("\n"));
}

/// The schema's secret fields as dotted paths (`credentials.password`), sorted.
pub fn secrets<T: Driver>() -> Vec<String> {
    let parsed = T::config_schema().and_then(|text| schema::parse(text).ok());
    let mut paths: Vec<String> =
        parsed.map(|p| schema::secret_paths(&p).iter().map(|path| path.join(".")).collect()).unwrap_or_default();
    paths.sort();
    paths
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// The schema's top-level field names, sorted.
fn properties(schema: &Value) -> Vec<String> {
    sorted(schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default())
}

/// The names in the first column of the first table of the README's "## Fields" section, sorted.
fn readme_fields(readme: &str) -> Option<Vec<String>> {
    let section = readme.split("\n## ").find(|s| s.starts_with("Fields\n"))?;
    let table = section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|'));
    let rows = table.filter_map(|l| l.strip_prefix("| ")).filter(|l| l.starts_with('`'));
    let first_cells = rows.filter_map(|l| l.split(" |").next());
    let names = first_cells.flat_map(|cell| cell.split('`').skip(1).step_by(2).collect::<Vec<_>>());
    Some(sorted(names.map(str::to_string).collect()))
}

#[cfg(test)]
mod tests {
    use super::readme_fields;

    #[test]
    fn readme_fields_are_the_first_column_of_the_fields_table() {
        let readme = "# X\n\n## Fields\n\nText.\n\n| field | default |\n|---|---|\n| `b` | 1 |\n| `a`, `c` | 2 |\n\n\
                      | `other` | table |\n\n## Next\n| `z` | no |\n";
        assert_eq!(readme_fields(readme), Some(vec!["a".to_string(), "b".into(), "c".into()]));
        assert_eq!(readme_fields("# X\n## Other\n"), None);
    }
}
