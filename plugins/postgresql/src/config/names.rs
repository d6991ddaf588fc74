//! Table and column names as the configuration gives them.
//!
//! Names are exact: they are always quoted in SQL ([`crate::request::sql`]), so `Readings` means
//! the table `"Readings"`, not `readings` as unquoted SQL would fold it. A table is `name` or
//! `schema.name`; a part that holds a dot is written in double quotes (`"my.schema".readings`,
//! with `""` for a quote inside). Nothing from the configuration reaches SQL unquoted.

/// PostgreSQL's longest identifier in bytes (`NAMEDATALEN - 1`); longer ones are cut silently by
/// the server, so they are refused here instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// A table, optionally with its schema; without one, the server's `search_path` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema, exact.
    pub schema: Option<String>,
    /// The table, exact.
    pub name: String,
}

impl TableName {
    /// Parses `name`, `schema.name` or their quoted forms.
    pub fn parse(text: &str) -> Result<TableName, String> {
        let parts = split(text.trim())?;
        for part in &parts {
            check_identifier(part)?;
        }
        match <[String; 2]>::try_from(parts) {
            Ok([schema, name]) => Ok(TableName { schema: Some(schema), name }),
            Err(parts) => match <[String; 1]>::try_from(parts) {
                Ok([name]) => Ok(TableName { schema: None, name }),
                Err(_) => Err("at most schema.table; quote a name that holds a dot".to_string()),
            },
        }
    }
}

impl std::fmt::Display for TableName {
    /// The quoted SQL form, e.g. `"public"."readings"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::request::sql::table(self))
    }
}

/// Checks one identifier: not empty, no NUL, at most [`MAX_IDENTIFIER_BYTES`].
pub fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("a name must not be empty".to_string())
    } else if name.contains('\0') {
        Err("a name must not contain a NUL character".to_string())
    } else if name.len() > MAX_IDENTIFIER_BYTES {
        Err(format!("\"{name}\" is longer than {MAX_IDENTIFIER_BYTES} bytes"))
    } else {
        Ok(())
    }
}

/// Splits on dots outside double quotes, unquoting quoted parts.
fn split(text: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unclosed double quote".to_string()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                }
            }
            if !matches!(chars.peek(), None | Some('.')) {
                return Err("a quoted name must be followed by a dot or the end".to_string());
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != '.') {
                if c == '"' {
                    return Err("a double quote may only open a quoted name".to_string());
                }
                part.push(c);
                chars.next();
            }
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some(_) => continue,
        }
    }
}
