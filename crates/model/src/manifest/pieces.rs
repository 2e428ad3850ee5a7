//! Where a manifest can be cut into pieces that parse alone: before each `[[accounts]]` header.
//!
//! A `toml_edit` document keeps the decor and representation of every key and
//! value, several hundred bytes each: a 50,000-account manifest is about
//! 215 MB of document. Parsed one `[[accounts]]` table at a time, only one
//! table's document is alive while the figment tree is built. This module only
//! finds the cuts; the caller checks that every piece parses and means what
//! it means in the whole file, and parses the whole file when not (any doubt
//! costs time, never a different result).

/// The byte offsets of the lines that are exactly an `[[accounts]]` header
/// (optionally followed by a comment), outside strings and arrays, or `None`
/// when the text has something this scanner does not follow (an unterminated
/// string, an unbalanced bracket, another header after the first
/// `[[accounts]]`): then the whole file is parsed as one.
pub(super) fn account_headers(text: &str) -> Option<Vec<usize>> {
    let bytes = text.as_bytes();
    let mut cuts = Vec::new();
    let mut depth: usize = 0;
    let mut at = 0;
    let mut line_start = true;
    while at < bytes.len() {
        if line_start && depth == 0 {
            let rest = &text[at..];
            let body = rest.trim_start_matches([' ', '\t']);
            if body.starts_with('[') {
                let line_end = rest.find('\n').map_or(text.len(), |n| at + n + 1);
                let line = &text[at..line_end];
                if is_accounts_header(line) {
                    cuts.push(at);
                } else if !cuts.is_empty() {
                    return None;
                } else if line.contains(['"', '\'']) {
                    // A quoted header key before the first account: not worth following.
                    return None;
                }
                at = line_end;
                continue;
            }
        }
        line_start = false;
        match bytes[at] {
            b'\n' => {
                line_start = true;
                at += 1;
            }
            b'#' => {
                at = text[at..].find('\n').map_or(bytes.len(), |n| at + n);
            }
            b'[' | b'{' => {
                depth += 1;
                at += 1;
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at = close_multiline(bytes, at + 3, b'"', true)?;
            }
            b'\'' if bytes[at..].starts_with(b"'''") => {
                at = close_multiline(bytes, at + 3, b'\'', false)?;
            }
            quote @ (b'"' | b'\'') => {
                at = close_single(bytes, at + 1, quote, quote == b'"')?;
            }
            _ => at += 1,
        }
    }
    (depth == 0).then_some(cuts)
}

/// `[[accounts]]`, maybe indented, maybe with a comment after it.
fn is_accounts_header(line: &str) -> bool {
    let line = line.trim_start_matches([' ', '\t']);
    let Some(rest) = line.strip_prefix("[[accounts]]") else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with(['#', '\n']) || rest == "\r\n" || rest == "\r"
}

/// The offset just past the closing quote of a one-line string opened before `at`.
fn close_single(bytes: &[u8], mut at: usize, quote: u8, escapes: bool) -> Option<usize> {
    while at < bytes.len() {
        match bytes[at] {
            b'\n' => return None,
            b'\\' if escapes => at += 2,
            b if b == quote => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

/// The offset just past the closing triple quote of a multi-line string
/// opened before `at` (up to two more quotes may end it: `""""" `).
fn close_multiline(bytes: &[u8], mut at: usize, quote: u8, escapes: bool) -> Option<usize> {
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if escapes => at += 2,
            b if b == quote && bytes[at..].starts_with(&[quote; 3]) => {
                let mut end = at + 3;
                while end < bytes.len() && bytes[end] == quote && end < at + 5 {
                    end += 1;
                }
                return Some(end);
            }
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::account_headers;

    #[test]
    fn cuts_before_each_accounts_header_only() {
        let text =
            "[platform]\na = 1\n\n[[accounts]]\nname = \"x\"\n  [[accounts]] # two\nname = 'y'\n";
        let cuts = account_headers(text).expect("cuts");
        assert_eq!(cuts.len(), 2);
        assert!(text[cuts[0]..].starts_with("[[accounts]]\nname = \"x\""));
        assert!(text[cuts[1]..].starts_with("  [[accounts]] # two"));
        assert_eq!(account_headers("[platform]\na = 1\n"), Some(Vec::new()));
    }

    #[test]
    fn headers_inside_strings_arrays_and_comments_are_not_cuts() {
        let text = concat!(
            "[[accounts]]\n",
            "description = \"\"\"\n[[accounts]]\n\"\"\"\n",
            "note = '''\n[[accounts]]\n'''\n",
            "sandboxes = [\n  \"a\", # ]\n[\"b\"],\n]\n",
            "quoted = \"[[\\\"x\"\n",
        );
        assert_eq!(account_headers(text), Some(vec![0]));
    }

    #[test]
    fn anything_it_does_not_follow_means_no_cuts() {
        // Another header after the first account, an unterminated string,
        // an unbalanced bracket, a quoted header key.
        assert_eq!(account_headers("[[accounts]]\n[accounts.x]\n"), None);
        assert_eq!(account_headers("[[accounts]]\n[platform]\n"), None);
        assert_eq!(account_headers("a = \"open\n[[accounts]]\n"), None);
        assert_eq!(account_headers("a = \"\"\"open\n[[accounts]]\n"), None);
        assert_eq!(account_headers("a = [1\n[[accounts]]\n"), None);
        assert_eq!(account_headers("a = ]\n"), None);
        assert_eq!(account_headers("[\"platform\"]\n[[accounts]]\n"), None);
    }

    /// Every manifest of the corpus and a generated one: parsed in pieces,
    /// the data and every span are those of the whole-file parse.
    #[test]
    fn pieces_give_the_data_and_spans_of_the_whole_file() {
        let mut texts: Vec<String> = super::super::tests::corpus()
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        let mut generated = String::from("[platform]\norg_id = \"X@AdobeOrg\"\n");
        for i in 0..50 {
            generated.push_str(&format!(
                "\n[[accounts]] # {i}\nname = \"n{i}\"\nsandboxes = [\n  \"a\",\n  \"b\", # c\n]\naccount_key = {{ env = \"K\" }}\nwhen = 1979-05-27\n"
            ));
        }
        texts.push(generated);
        let mut compared = 0;
        for text in texts {
            let path = std::path::Path::new("m.toml");
            let Ok(mut file) = super::super::source::parse(path, text.clone()) else {
                continue;
            };
            if file.pieces.is_empty() || !file.convert_pieces() {
                continue;
            }
            let whole = super::super::source::parse_whole(path, text)
                .expect("what parses in pieces parses whole");
            assert_eq!(file.data, whole.data);
            assert_eq!(file.spans, whole.spans);
            compared += 1;
        }
        assert!(
            compared >= 20,
            "only {compared} manifests were cut into pieces"
        );
    }
}
