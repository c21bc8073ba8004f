//! How custody commands print their result: readable text by default (short aligned tables
//! or `key: value` lines), or with `--json` exactly one JSON object on stdout (the API's
//! response, or one the command composed). Nothing reaches stdout before a command has
//! succeeded, so a failure still leaves stdout empty.

use serde_json::Value;

use crate::Failure;

/// Renders the result: the JSON object (one line) or the text (with a final newline).
pub(crate) fn render(json: bool, value: &Value, text: &str) -> Result<String, Failure> {
    if json {
        let line = serde_json::to_string(value)
            .map_err(|e| Failure(format!("cannot encode output: {e}")))?;
        return Ok(format!("{line}\n"));
    }
    let mut out = text.trim_end_matches('\n').to_string();
    out.push('\n');
    Ok(out)
}

/// Prints the result of a command: `text` builds the readable form from the value (only
/// called in text mode).
pub(crate) fn show(
    json: bool,
    value: &Value,
    text: impl FnOnce(&Value) -> String,
) -> Result<(), Failure> {
    let body = if json { String::new() } else { text(value) };
    let out = render(json, value, &body)?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure(format!("cannot write to stdout: {e}")))
}

/// A JSON value as a table cell: strings unquoted, null and missing as `-`.
pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| !x.is_array() && !x.is_object()) => {
            if a.is_empty() {
                "-".into()
            } else {
                a.iter().map(cell).collect::<Vec<_>>().join(",")
            }
        }
        other => other.to_string(),
    }
}

/// The first 8 characters of a long hex value (keys, hashes), for tables.
pub(crate) fn short(v: &Value) -> String {
    let s = cell(v);
    if s.len() > 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("{}…", &s[..8])
    } else {
        s
    }
}

/// A Unix time as UTC `YYYY-MM-DD HH:MM:SS` (numbers only; anything else as is).
pub(crate) fn time(v: &Value) -> String {
    let Some(t) = v.as_i64() else {
        return cell(v);
    };
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// An aligned table with a header line; `(none)` when there are no rows.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(w.saturating_sub(c.chars().count()) + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut lines = vec![line(headers.to_vec())];
    for row in rows {
        lines.push(line(row.iter().map(String::as_str).collect()));
    }
    lines.join("\n")
}

/// `key: value` lines with the values aligned.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            let pad = " ".repeat(width - k.chars().count());
            format!("{k}:{pad} {v}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The array under `key` of a list response (empty when absent).
pub(crate) fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn json_mode_prints_exactly_one_object_and_text_mode_the_text() {
        let v = json!({"id": "v-1", "name": "treasury", "n": 3});
        let out = render(true, &v, "ignored").unwrap();
        assert_eq!(out.lines().count(), 1);
        assert!(out.ends_with('\n'));
        assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap(), v);
        let out = render(false, &v, "id: v-1\n\n").unwrap();
        assert_eq!(out, "id: v-1\n");
        assert!(serde_json::from_str::<Value>(out.trim()).is_err());
    }

    #[test]
    fn tables_align_and_say_none() {
        let t = table(
            &["ID", "NAME"],
            &[
                vec!["v-1".into(), "treasury".into()],
                vec!["vault-22".into(), "ops".into()],
            ],
        );
        assert_eq!(t, "ID        NAME\nv-1       treasury\nvault-22  ops");
        assert_eq!(table(&["ID"], &[]), "(none)");
    }

    #[test]
    fn fields_align_values() {
        let f = fields(&[("id", "v-1".into()), ("threshold", "2".into())]);
        assert_eq!(f, "id:        v-1\nthreshold: 2");
    }

    #[test]
    fn cells_and_times() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("")), "-");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!(7)), "7");
        assert_eq!(cell(&json!(["a", "b"])), "a,b");
        assert_eq!(short(&json!("ab".repeat(32))), "abababab…");
        assert_eq!(short(&json!("tx-1")), "tx-1");
        assert_eq!(time(&json!(0)), "1970-01-01 00:00:00");
        assert_eq!(time(&json!(1_700_000_000)), "2023-11-14 22:13:20");
        assert_eq!(time(&json!(951_825_600)), "2000-02-29 12:00:00");
        assert_eq!(time(&json!("soon")), "soon");
        assert_eq!(items(&json!({"a": [1]}), "a").len(), 1);
        assert!(items(&json!({}), "a").is_empty());
    }
}
