//! Closest-name suggestions for error messages.

/// The candidate closest to `input` by normalised Damerau-Levenshtein similarity, if any is
/// reasonably close (similarity ≥ 0.5, or `input` is a prefix/suffix of it).
pub fn closest<'a, I, S>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + 'a + ?Sized,
{
    let mut best: Option<(&'a str, f64)> = None;
    for c in candidates {
        let c = c.as_ref();
        let mut score = strsim::normalized_damerau_levenshtein(input, c);
        if !input.is_empty() && (c.starts_with(input) || c.ends_with(input) || input.contains(c)) {
            score = score.max(0.75);
        }
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.filter(|(_, s)| *s >= 0.5).map(|(c, _)| c)
}

/// " (did you mean `x`?)" or an empty string.
pub fn did_you_mean<'a, I, S>(input: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + 'a + ?Sized,
{
    match closest(input, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_rejects_unrelated() {
        let names = ["icl-gd", "coin-corridor", "cheese-maze"];
        assert_eq!(closest("icl_gd", &names), Some("icl-gd"));
        assert_eq!(closest("cheese", &names), Some("cheese-maze"));
        assert_eq!(closest("zzzzzzzzzzzz", &names), None);
        assert_eq!(did_you_mean("coin-corridr", &names), " (did you mean `coin-corridor`?)");
    }
}
