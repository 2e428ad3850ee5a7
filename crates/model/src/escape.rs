//! Escaping of text that came from outside (connection names, descriptions,
//! server messages) for where it is shown: a terminal, a Markdown table, XML.
//!
//! A name made in the AEP UI can hold anything: ESC sequences that repaint a
//! terminal, a CR that hides the start of a line, a `|` or a newline that
//! breaks a Markdown table. Every renderer passes such text through here.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for characters that must never reach a terminal raw: C0 and C1
/// controls, DEL, and the Unicode bidirectional overrides and isolates that
/// can make text read differently from what it is.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The text with every unsafe character written as `\u{…}` (tab kept as `\t`,
/// newline as `\n`), so it shows on one line and cannot steer a terminal.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Text for a Markdown table cell: safe for a terminal, one line, no `|`
/// that could end the cell, no `<` that could open HTML. Backticks are kept,
/// so that `code` in our own messages still reads as code.
pub fn md_cell(text: &str) -> String {
    let safe = terminal(text);
    let mut out = String::with_capacity(safe.len() + 8);
    for c in safe.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Text as a Markdown code span inside a table cell: a fence longer than any
/// run of backticks inside, and `|` escaped (GitHub reads `\|` in a code span
/// of a table cell as a pipe).
pub fn md_code(text: &str) -> String {
    let safe = terminal(text);
    let mut longest = 0;
    let mut run = 0;
    for c in safe.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let body = safe.replace('|', "\\|");
    let pad = if body.starts_with('`') || body.ends_with('`') || body.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// Text for XML attribute values and element content.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in terminal(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_never_carries_controls() {
        for (raw, shown) in [
            ("plain name", "plain name"),
            ("a\x1b[2Jb", "a\\u{1b}[2Jb"),
            ("bell\x07", "bell\\u{7}"),
            ("cr\rhidden", "cr\\rhidden"),
            ("two\nlines", "two\\nlines"),
            ("del\x7f", "del\\u{7f}"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("rtl\u{202e}txt", "rtl\\u{202e}txt"),
            ("ünïcödé ✓", "ünïcödé ✓"),
        ] {
            assert_eq!(terminal(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        let cell = md_cell("a | b\n| c <script> [x](y) `z`");
        assert!(!cell.contains('\n'));
        assert_eq!(
            cell.matches('|').count(),
            cell.matches("\\|").count(),
            "{cell}"
        );
        assert!(!cell.contains('<'), "{cell}");
        assert!(cell.contains("`z`"), "{cell}");
    }

    #[test]
    fn code_spans_outfence_backticks() {
        assert_eq!(md_code("sales-eu"), "`sales-eu`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_code("a|b"), "`a\\|b`");
        assert_eq!(md_code("a\x1bb"), "`a\\u{1b}b`");
    }

    #[test]
    fn xml_escapes_markup_and_controls() {
        assert_eq!(
            xml("<a b=\"c\">&'\x1b"),
            "&lt;a b=&quot;c&quot;&gt;&amp;&apos;\\u{1b}"
        );
    }
}
