//! Strict query-string parsing: every parameter an endpoint does not know, every repeated one and
//! every malformed value is a 400 whose message names the parameter and what would be valid.

use crate::error::HttpError;
use mesalab_store::RunId;

/// The decoded `name=value` pairs of a query string, checked against the names an endpoint takes.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `raw` (the part after `?`, if any) and refuses names outside `allowed` and repeats.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Params, HttpError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                let expected =
                    if allowed.is_empty() { "this page takes no parameters".to_string() } else { list(allowed) };
                return Err(HttpError::bad_request(format!(
                    "unknown query parameter `{}`; expected {expected}",
                    shorten(&name)
                )));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(HttpError::bad_request(format!("query parameter `{name}` is given more than once")));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, `None` when absent or empty (an empty form field means "any").
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// `name` as one of `choices`.
    pub fn choice<'c>(&self, name: &str, choices: &[&'c str]) -> Result<Option<&'c str>, HttpError> {
        let Some(value) = self.get(name) else { return Ok(None) };
        choices.iter().find(|c| **c == value).map(|c| Some(*c)).ok_or_else(|| {
            HttpError::bad_request(format!(
                "`{name}={}` is not valid; expected one of {}",
                shorten(value),
                list(choices)
            ))
        })
    }

    /// `name` as an integer in `lo..=hi`.
    pub fn integer(&self, name: &str, lo: u64, hi: u64) -> Result<Option<u64>, HttpError> {
        let Some(value) = self.get(name) else { return Ok(None) };
        match value.parse::<u64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
            _ => Err(HttpError::bad_request(format!(
                "`{name}={}` is not valid; expected a whole number from {lo} to {hi}",
                shorten(value)
            ))),
        }
    }

    /// `name` as a comma-separated list of run ids (at least one, no repeats, at most `max`).
    pub fn run_ids(&self, name: &str, max: usize) -> Result<Vec<RunId>, HttpError> {
        let Some(value) = self.get(name) else {
            return Err(HttpError::bad_request(format!(
                "`{name}` is missing; give the runs as ids separated by commas, e.g. `?{name}=3,7`"
            )));
        };
        let mut ids = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id = parse_run_id(part)?;
            if ids.contains(&id) {
                return Err(HttpError::bad_request(format!("run {id} is listed twice in `{name}`")));
            }
            ids.push(id);
        }
        if ids.is_empty() {
            return Err(HttpError::bad_request(format!("`{name}` lists no run ids; e.g. `?{name}=3,7`")));
        }
        if ids.len() > max {
            return Err(HttpError::bad_request(format!("`{name}` lists {} runs; at most {max} at once", ids.len())));
        }
        Ok(ids)
    }
}

/// A run id as it appears in a URL: a positive decimal integer, nothing else (no paths, no signs).
pub fn parse_run_id(text: &str) -> Result<RunId, HttpError> {
    let valid = !text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<i64>() {
        Ok(n) if valid && n > 0 => Ok(RunId(n)),
        _ => Err(HttpError::bad_request(format!(
            "`{}` is not a run id; run ids are positive whole numbers, as listed on the runs page",
            shorten(text)
        ))),
    }
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Echoes user input back at most 60 characters long (and never with control characters).
pub(crate) fn shorten(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { '�' } else { c }).collect();
    if clean.chars().count() <= 60 { clean } else { format!("{}…", clean.chars().take(60).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_repeated_and_malformed_parameters_are_refused() {
        assert!(Params::parse(Some("sort=id&bogus=1"), &["sort"]).unwrap_err().message.contains("`bogus`"));
        assert!(Params::parse(Some("sort=id&sort=status"), &["sort"]).unwrap_err().message.contains("more than once"));
        let p = Params::parse(Some("sort=nope&limit=x&runs=1,a"), &["sort", "limit", "runs"]).unwrap();
        assert!(p.choice("sort", &["id", "status"]).unwrap_err().message.contains("expected one of `id`, `status`"));
        assert!(p.integer("limit", 1, 10).unwrap_err().message.contains("from 1 to 10"));
        assert!(p.run_ids("runs", 8).unwrap_err().message.contains("`a` is not a run id"));
    }

    #[test]
    fn run_ids_are_positive_integers_only() {
        for bad in ["0", "-1", "+1", "1.0", "../1", "1e3", "", " 1", "99999999999999999999", "%31"] {
            assert!(parse_run_id(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse_run_id("42").unwrap(), RunId(42));
        let p = Params::parse(Some("runs=3%2C7"), &["runs"]).unwrap();
        assert_eq!(p.run_ids("runs", 8).unwrap(), vec![RunId(3), RunId(7)]);
        let p = Params::parse(Some("runs=3,3"), &["runs"]).unwrap();
        assert!(p.run_ids("runs", 8).is_err());
    }

    #[test]
    fn empty_values_mean_absent() {
        let p = Params::parse(Some("status=&q="), &["status", "q"]).unwrap();
        assert_eq!(p.get("status"), None);
        assert_eq!(p.choice("status", &["running"]).unwrap(), None);
    }
}
