//! Reading the manifest file and turning it, the environment and the flags into figment layers.
//!
//! The file is parsed once, with `toml_edit`, which keeps the byte span of
//! every key and value; the tree becomes the file layer's figment data and
//! the spans give each diagnostic its line and column.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Value};

use super::Location;
use super::bounded::{self, MAX_MANIFEST_BYTES, MAX_NESTING, ReadError};
use crate::diagnostic::{Diagnostic, line_column};

/// The layers, kept in `layers.rs`.
pub(super) use super::layers::{
    BuiltIn, LAYER_DEFAULTS, LAYER_ENV, LAYER_FILE, LAYER_FLAGS, Layer, Named, env_layer,
};

/// Where a key and its value start in the file (byte offsets: a manifest is
/// at most 16 MiB; a diagnostic needs only the line and column of a start).
/// A 10,000 × 10 manifest has 170,000 of them, so they are kept small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Spans {
    pub(super) key: Option<u32>,
    pub(super) value: Option<u32>,
    pub(super) datetime: bool,
}

/// The spans of every key path.
pub(super) type SpanMap = HashMap<Box<str>, Spans>;

/// The parsed file: its text, its data and the spans of every key path
/// (without the accounts while they are still in `pieces`).
#[derive(Debug)]
pub(super) struct File {
    pub(super) path: PathBuf,
    pub(super) text: String,
    pub(super) data: Dict,
    pub(super) spans: SpanMap,
    /// The byte ranges of the `[[accounts]]` pieces not converted yet (see
    /// [`parse`]); empty when the file was parsed whole.
    pub(super) pieces: Vec<Range<usize>>,
}

impl File {
    /// The location of a byte offset.
    pub(super) fn location(&self, start: Option<u32>) -> Location {
        let (line, column) = match start {
            Some(start) => {
                let (line, column) = line_column(&self.text, start as usize);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        Location::File {
            path: self.path.clone(),
            line,
            column,
        }
    }
}

/// Reads the file as UTF-8 text, refusing what is not a regular file, files
/// over [`MAX_MANIFEST_BYTES`], and unreadable, empty and non-UTF-8 files.
/// Errors are boxed: they are rare and a `Diagnostic` is large.
pub(super) fn read(path: &Path) -> Result<String, Box<Diagnostic>> {
    let whole_file = || Location::File {
        path: path.to_owned(),
        line: None,
        column: None,
    };
    let cannot = |what: String| Box::new(Diagnostic::error(whole_file(), None, what));
    let bytes = match bounded::read(path, MAX_MANIFEST_BYTES) {
        Ok((bytes, _)) => bytes,
        Err(ReadError::Io(err)) => {
            return Err(cannot(format!(
                "cannot read the manifest: {}",
                io_reason(&err)
            )));
        }
        Err(ReadError::Directory) => {
            let diagnostic = cannot("the manifest is a directory, not a file".to_owned());
            return Err(Box::new(
                diagnostic.with_hint("pass the path of a .toml file"),
            ));
        }
        Err(ReadError::NotRegular(kind)) => {
            let diagnostic = cannot(format!("the manifest is {kind}, not a regular file"));
            return Err(Box::new(
                diagnostic.with_hint("pass the path of a .toml file"),
            ));
        }
        Err(ReadError::TooLarge) => {
            let diagnostic = cannot(format!(
                "the manifest is larger than {}, the most a manifest may be",
                bounded::size(MAX_MANIFEST_BYTES)
            ));
            return Err(Box::new(diagnostic.with_hint(
                "is this the right file? a manifest of 100,000 accounts is about 14 MB",
            )));
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let prefix = std::str::from_utf8(&err.as_bytes()[..valid]).unwrap_or_default();
            let (line, column) = line_column(prefix, valid);
            return Err(Box::new(
                Diagnostic::error(
                    Location::File {
                        path: path.to_owned(),
                        line: Some(line),
                        column: Some(column),
                    },
                    None,
                    format!("the manifest is not valid UTF-8 (byte offset {valid})"),
                )
                .with_hint("save the file as UTF-8"),
            ));
        }
    };
    if text.trim().is_empty() {
        let diagnostic = cannot("the manifest is empty".to_owned());
        return Err(Box::new(
            diagnostic.with_hint("see configs/example.toml for a complete manifest"),
        ));
    }
    Ok(text)
}

/// Describes an IO error without Rust's `(os error 13)` noise.
pub(super) fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}

/// Parses TOML, keeping spans.
///
/// A manifest made of a head and `[[accounts]]` tables is parsed in pieces
/// ([`super::pieces`]): here only the head; each `[[accounts]]` piece is
/// parsed and converted when the rules reach it ([`account_piece`]), so that
/// only one account's `toml_edit` document and figment values are alive at
/// once. Anything else is parsed whole. A piece that does not parse or does
/// not stand alone sends the loader back to [`parse_whole`], which gives the
/// same data and spans, or the diagnostic.
pub(super) fn parse(path: &Path, text: String) -> Result<File, Box<Diagnostic>> {
    if let Some((data, spans, pieces)) = parse_in_pieces(&text) {
        return Ok(File {
            path: path.to_owned(),
            text,
            data,
            spans,
            pieces,
        });
    }
    parse_whole(path, text)
}

/// The head's data and spans, and the byte ranges of the `[[accounts]]`
/// pieces; `None` when the file must be parsed whole (see [`parse`]).
pub(super) fn parse_in_pieces(text: &str) -> Option<(Dict, SpanMap, Vec<Range<usize>>)> {
    let cuts = super::pieces::account_headers(text)?;
    let (&first, _) = cuts.split_first()?;
    let mut convert = Convert::new(0);
    let head = toml_edit::ImDocument::parse(&text[..first]).ok()?;
    if head.as_table().contains_key("accounts") {
        return None;
    }
    let data = convert.table(head.as_table(), "", 0);
    if convert.too_deep.is_some() {
        return None;
    }
    let ends = cuts.iter().skip(1).copied().chain([text.len()]);
    let pieces = cuts.iter().zip(ends).map(|(&s, e)| s..e).collect();
    Some((data, convert.spans, pieces))
}

/// Parses and converts one `[[accounts]]` piece (`range` of `text`), whose
/// first table is account `first_index`: its accounts' values, their spans
/// recorded in `spans`. `None` when the piece does not parse, does not stand
/// alone (another key than `accounts`) or nests too deep: then the file is
/// parsed whole.
pub(super) fn account_piece(
    text: &str,
    range: Range<usize>,
    first_index: usize,
    spans: &mut SpanMap,
) -> Option<Vec<Value>> {
    let start = range.start;
    let piece = toml_edit::ImDocument::parse(text.get(range)?).ok()?;
    let root = piece.as_table();
    if root.len() != 1 {
        return None;
    }
    let (key, item) = root.get_key_value("accounts")?;
    let toml_edit::Item::ArrayOfTables(tables) = item else {
        return None;
    };
    let mut convert = Convert::new(start);
    convert.spans = std::mem::take(spans);
    if first_index == 0 {
        // The whole file's array starts where the first piece's does.
        let span = Spans {
            key: convert.start(key.span()),
            value: convert.start(item.span()),
            datetime: false,
        };
        convert.spans.insert("accounts".into(), span);
        if !convert.enter(1, tables.span()) {
            return None;
        }
    }
    let mut accounts = Vec::with_capacity(tables.len());
    for table in tables.iter() {
        let child = index("accounts", first_index + accounts.len());
        let spans = convert.element_spans(table.span());
        accounts.push(Value::from(convert.table(table, &child, 2)));
        convert.record(child, spans);
    }
    *spans = convert.spans;
    convert.too_deep.is_none().then_some(accounts)
}

impl File {
    /// Converts every `[[accounts]]` piece not converted yet into the file's
    /// data and spans, as [`parse_whole`] would have them; `false` when one
    /// does not stand alone (then the file must be parsed whole).
    pub(super) fn convert_pieces(&mut self) -> bool {
        if self.pieces.is_empty() {
            return true;
        }
        let mut accounts = Vec::new();
        for range in std::mem::take(&mut self.pieces) {
            match account_piece(&self.text, range, accounts.len(), &mut self.spans) {
                Some(values) => accounts.extend(values),
                None => return false,
            }
        }
        self.data
            .insert("accounts".to_owned(), Value::from(accounts));
        self.spans.shrink_to_fit();
        true
    }
}

/// Parses the whole file as one `toml_edit` document.
pub(super) fn parse_whole(path: &Path, text: String) -> Result<File, Box<Diagnostic>> {
    let doc = match toml_edit::ImDocument::parse(text.as_str()) {
        Ok(doc) => doc,
        Err(err) => {
            let span = err.span();
            let (line, column) = span
                .map(|s| line_column(&text, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            // The message never quotes the input; keep its lines on one line.
            let message = err
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Box::new(
                Diagnostic::error(
                    Location::File {
                        path: path.to_owned(),
                        line,
                        column,
                    },
                    None,
                    format!("not valid TOML: {message}"),
                )
                .with_hint("a manifest is a TOML file; see configs/example.toml"),
            ));
        }
    };
    let mut convert = Convert::new(0);
    let data = convert.table(doc.as_table(), "", 0);
    drop(doc);
    if let Some(span) = convert.too_deep {
        let (line, column) = span
            .map(|s| line_column(&text, s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        return Err(Box::new(
            Diagnostic::error(
                Location::File {
                    path: path.to_owned(),
                    line,
                    column,
                },
                None,
                format!("tables and arrays nest deeper than {MAX_NESTING} levels"),
            )
            .with_hint("a manifest nests 4 levels at most (`accounts[0].account_key.env`)"),
        ));
    }
    Ok(File {
        path: path.to_owned(),
        text,
        data,
        spans: convert.spans,
        pieces: Vec::new(),
    })
}

/// Joins a key path: `a.b`, or just `b` at the root.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        return key.to_owned();
    }
    // Not `format!`: a 10,000-account manifest joins 100,000 paths.
    let mut path = String::with_capacity(parent.len() + 1 + key.len());
    path.push_str(parent);
    path.push('.');
    path.push_str(key);
    path
}

/// The path of element `i` of the array at `path`: `path[i]` (not
/// `format!`: a large manifest makes hundreds of thousands).
pub(super) fn index(path: &str, i: usize) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = i;
    loop {
        at -= 1;
        // `n % 10` is below 10.
        #[allow(clippy::cast_possible_truncation)]
        {
            digits[at] = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut text = String::with_capacity(path.len() + 2 + digits.len() - at);
    text.push_str(path);
    text.push('[');
    for &d in &digits[at..] {
        text.push(char::from(d));
    }
    text.push(']');
    text
}

/// Turns the `toml_edit` tree into figment values, recording spans and
/// stopping at the first table or array nested deeper than [`MAX_NESTING`].
struct Convert {
    spans: SpanMap,
    /// Where nesting first went too deep (`Some(None)` when there is no span).
    too_deep: Option<Option<Range<usize>>>,
    /// Where the parsed piece starts in the file: added to every span.
    offset: usize,
}

impl Convert {
    fn new(offset: usize) -> Self {
        Convert {
            spans: HashMap::new(),
            too_deep: None,
            offset,
        }
    }

    /// A span of the piece, as a span of the file.
    fn shift(&self, span: Option<Range<usize>>) -> Option<Range<usize>> {
        span.map(|s| s.start + self.offset..s.end + self.offset)
    }

    /// Where a span of the piece starts in the file.
    fn start(&self, span: Option<Range<usize>>) -> Option<u32> {
        span.and_then(|s| u32::try_from(s.start + self.offset).ok())
    }

    /// Records the spans of `path` (a date-time mark already made stays).
    /// Called after its value is converted, so the path's own allocation
    /// becomes the key.
    fn record(&mut self, path: String, spans: Spans) {
        self.spans
            .entry(path.into_boxed_str())
            .and_modify(|s| {
                s.key = spans.key;
                s.value = spans.value;
            })
            .or_insert(spans);
    }

    /// The spans of an array element: it starts where its value does.
    fn element_spans(&self, span: Option<Range<usize>>) -> Spans {
        let start = self.start(span);
        Spans {
            key: start,
            value: start,
            datetime: false,
        }
    }

    /// Whether a table or array at `depth` may be entered; records the first that may not.
    fn enter(&mut self, depth: usize, span: Option<Range<usize>>) -> bool {
        if depth <= MAX_NESTING {
            return true;
        }
        if self.too_deep.is_none() {
            self.too_deep = Some(self.shift(span));
        }
        false
    }

    fn table(&mut self, table: &dyn toml_edit::TableLike, path: &str, depth: usize) -> Dict {
        let mut dict = Dict::new();
        for (key, item) in table.iter() {
            let child = join(path, key);
            let key_span = self.shift(table.get_key_value(key).and_then(|(k, _)| k.span()));
            let spans = Spans {
                key: key_span.as_ref().and_then(|s| u32::try_from(s.start).ok()),
                value: self.start(item.span()),
                datetime: false,
            };
            if depth + 1 > MAX_NESTING && self.too_deep.is_none() {
                // An implicit table (`[a.b.c]` makes `a` and `b`) has no span of its own.
                self.too_deep = Some(self.shift(item.span()).or(key_span));
                self.record(child, spans);
                continue;
            }
            if let Some(value) = self.item(item, &child, depth + 1) {
                dict.insert(key.to_owned(), value);
            }
            self.record(child, spans);
        }
        dict
    }

    fn item(&mut self, item: &toml_edit::Item, path: &str, depth: usize) -> Option<Value> {
        match item {
            toml_edit::Item::None => None,
            toml_edit::Item::Value(value) => Some(self.value(value, path, depth)),
            toml_edit::Item::Table(table) => {
                if !self.enter(depth, table.span()) {
                    return None;
                }
                Some(Value::from(self.table(table, path, depth)))
            }
            toml_edit::Item::ArrayOfTables(array) => {
                if !self.enter(depth, array.span()) {
                    return None;
                }
                let mut values = Vec::with_capacity(array.len());
                for (i, table) in array.iter().enumerate() {
                    let child = index(path, i);
                    let spans = self.element_spans(table.span());
                    values.push(Value::from(self.table(table, &child, depth + 1)));
                    self.record(child, spans);
                }
                Some(Value::from(values))
            }
        }
    }

    fn value(&mut self, value: &toml_edit::Value, path: &str, depth: usize) -> Value {
        use toml_edit::Value as V;
        match value {
            V::String(s) => Value::from(s.value().clone()),
            V::Integer(i) => Value::from(*i.value()),
            V::Float(f) => Value::from(*f.value()),
            V::Boolean(b) => Value::from(*b.value()),
            V::Datetime(d) => {
                self.spans.entry(path.into()).or_default().datetime = true;
                Value::from(d.value().to_string())
            }
            V::Array(array) => {
                if !self.enter(depth, array.span()) {
                    return Value::from(Vec::<Value>::new());
                }
                let mut values = Vec::with_capacity(array.len());
                for (i, element) in array.iter().enumerate() {
                    let child = index(path, i);
                    let spans = self.element_spans(element.span());
                    values.push(self.value(element, &child, depth + 1));
                    self.record(child, spans);
                }
                Value::from(values)
            }
            V::InlineTable(table) => {
                if !self.enter(depth, table.span()) {
                    return Value::from(Dict::new());
                }
                Value::from(self.table(table, path, depth))
            }
        }
    }
}
