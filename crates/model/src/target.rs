//! `--target NAME`: which accounts (connection names) a run is limited to.
//! A pattern is a name, or a name with `*` standing for any run of
//! characters; no pattern at all means every name.

use crate::diagnostic::did_you_mean;

/// Whether `name` is in scope: no patterns, or one of them matches.
pub fn in_scope(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob(p, name))
}

/// Whether a `*` glob matches the whole of `name` (case-sensitive, like
/// connection names).
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == name;
    };
    if parts.len() == 1 {
        return pattern == name;
    }
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The first pattern that matches none of the `known` names, as a message
/// naming a close match or the names there are; `None` when each matches.
pub fn unmatched(patterns: &[String], known: &[&str]) -> Option<String> {
    let pattern = patterns
        .iter()
        .find(|p| !known.iter().any(|name| glob(p, name)))?;
    let mut message = format!("`--target {pattern}` matches no account of the manifest");
    match did_you_mean(pattern, known) {
        Some(close) => message.push_str(&format!("; did you mean `{close}`?")),
        None => {
            let mut names: Vec<&str> = known.to_vec();
            names.sort_unstable();
            names.dedup();
            message.push_str(&format!(" (its accounts: {})", names.join(", ")));
        }
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        for (pattern, name, expected) in [
            ("sales-eu", "sales-eu", true),
            ("sales-eu", "sales-eu2", false),
            ("sales-*", "sales-eu", true),
            ("sales-*", "sales-", true),
            ("sales-*", "crm-eu", false),
            ("*-eu", "sales-eu", true),
            ("*-eu", "sales-us", false),
            ("*", "anything", true),
            ("s*e*u", "sales-eu", true),
            ("a*a", "a", false),
            ("a**b", "ab", true),
            ("*les*", "sales-eu", true),
        ] {
            assert_eq!(glob(pattern, name), expected, "{pattern} vs {name}");
        }
        assert!(in_scope(&[], "x"));
        assert!(!in_scope(&["y".to_owned()], "x"));
    }

    #[test]
    fn an_unmatched_target_names_a_close_match_or_the_accounts() {
        let known = ["sales-eu", "crm"];
        assert_eq!(unmatched(&["sales-*".into(), "crm".into()], &known), None);
        assert_eq!(
            unmatched(&["sales-ue".into()], &known).unwrap(),
            "`--target sales-ue` matches no account of the manifest; did you mean `sales-eu`?"
        );
        assert_eq!(
            unmatched(&["hr-*".into()], &known).unwrap(),
            "`--target hr-*` matches no account of the manifest (its accounts: crm, sales-eu)"
        );
    }
}
