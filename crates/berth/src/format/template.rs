//! Go templates for `--format`, with docker's template functions.
//!
//! The engine is `gtmpl`. Two of its behaviours differ from Go's
//! `text/template` in ways users see, and are corrected here:
//! - it prints arrays and maps with Rust's `Debug`; Go prints `[a b]` and
//!   `map[k:v]`. Every printing action is rewritten to end in a hidden
//!   `__goprint` function that renders the value as Go's `%v` would.
//! - it has none of docker's functions (`json`, `join`, `table` headers, ...),
//!   which are added with their Go semantics.

use std::collections::HashMap;

use gtmpl::{Context, Func, FuncError, Value};

/// The prefix that turns a `--format` into a table with a header row.
pub(crate) const TABLE_PREFIX: &str = "table";
/// `--format json`: one JSON object per line.
pub(crate) const JSON_KEY: &str = "json";
/// What `--format json` stands for.
pub(crate) const JSON_FORMAT: &str = "{{json .}}";

/// Name of the hidden function appended to every printing action.
const PRINT_HOOK: &str = "__goprint";
/// A hidden field marking docker's formatter rows. Their `json` goes through
/// Go's `json.Marshal`, which escapes `<`, `>` and `&` (so "<none>" prints as
/// "\u003cnone\u003e"); other values are encoded without that escaping.
const ROW_MARKER: &str = "\u{0}row";
/// A hidden field listing alias fields (Go names that differ from JSON keys,
/// such as `ID` for `Id`), which `json` and printing leave out.
const ALIASES: &str = "\u{0}aliases";

/// Adds Go struct field names as aliases of JSON keys (`APIVersion` for
/// `ApiVersion`), so templates written for docker's typed structs work.
pub(crate) fn add_aliases(v: &mut Value, pairs: &[(&str, &str)]) {
    let Value::Object(m) = v else { return };
    let mut added = Vec::new();
    for (json_key, go_name) in pairs {
        if m.contains_key(*go_name) {
            continue;
        }
        if let Some(val) = m.get(*json_key).cloned() {
            m.insert((*go_name).to_string(), val);
            added.push(Value::from(*go_name));
        }
    }
    if !added.is_empty() {
        m.insert(ALIASES.to_string(), Value::Array(added));
    }
}

/// The keys of an object that are real fields (not markers or aliases).
fn visible_keys(m: &HashMap<String, Value>) -> Vec<&String> {
    let hidden: Vec<&str> = match m.get(ALIASES) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| {
                if let Value::String(s) = v {
                    Some(s.as_str())
                } else {
                    None
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut keys: Vec<&String> = m
        .keys()
        .filter(|k| *k != ROW_MARKER && *k != ALIASES && !hidden.contains(&k.as_str()))
        .collect();
    keys.sort();
    keys
}

/// A template could not be parsed or executed (docker: "template parsing error: ...").
#[derive(Debug)]
pub(crate) struct TemplateError(pub(crate) String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template parsing error: {}", self.0)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed `--format` template.
pub(crate) struct GoTemplate {
    tmpl: gtmpl::Template,
    /// The text as the user wrote it, for error positions.
    text: String,
}

impl GoTemplate {
    /// Parses `text` with docker's basic functions (`templates.Parse`).
    ///
    /// # Errors
    /// [`TemplateError`] when the text is not a valid template.
    pub(crate) fn parse(text: &str) -> Result<Self, TemplateError> {
        Self::parse_with(text, BASIC_FUNCS)
    }

    /// Parses `text` with the header functions that leave column names intact.
    fn parse_header(text: &str) -> Result<Self, TemplateError> {
        Self::parse_with(text, HEADER_FUNCS)
    }

    fn parse_with(text: &str, funcs: &[(&str, Func)]) -> Result<Self, TemplateError> {
        let mut tmpl = gtmpl::Template::default();
        tmpl.add_funcs(funcs);
        tmpl.add_func(PRINT_HOOK, go_print_func);
        let hooked = add_print_hooks(text)?;
        // Go's parser reports "unclosed action" for a dangling "{{"; gtmpl panics
        // on some malformed input, so guard against that too.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tmpl.parse(hooked).map(|()| tmpl).map_err(|e| e.to_string())
        }));
        match parsed {
            Ok(Ok(tmpl)) => Ok(GoTemplate {
                tmpl,
                text: text.to_string(),
            }),
            Ok(Err(e)) => Err(TemplateError(e)),
            Err(_) => Err(TemplateError(format!(
                "template: :1: cannot parse {text:?}"
            ))),
        }
    }

    /// Executes the template on `data`.
    ///
    /// # Errors
    /// [`TemplateError`] when execution fails (unknown field, bad function argument).
    pub(crate) fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.tmpl
            .render(&Context::from(data.clone()))
            .map_err(|e| TemplateError(exec_error_text(&self.text, &e.to_string())))
    }
}

/// gtmpl's execution errors, phrased closer to Go's and without the dump of
/// the whole value it appends to "no field" errors.
fn exec_error_text(template: &str, text: &str) -> String {
    if let Some(rest) = text.strip_prefix("no field ") {
        let field = rest.split(' ').next().unwrap_or("");
        // Go names the line and byte column of the failing field.
        let at = template.find(&format!(".{field}")).unwrap_or(0);
        let line = 1 + template[..at].matches('\n').count();
        let col = at - template[..at].rfind('\n').map_or(0, |nl| nl + 1);
        return format!(
            "template: :{line}:{col}: executing \"\" at <.{field}>: map has no entry for key \"{field}\""
        );
    }
    format!("template: :1: executing \"\": {text}")
}

/// A `--format` after docker's preprocessing (`formatter.Context.preFormat`).
pub(crate) struct PreparedFormat {
    /// The template text, without the `table` prefix and with `\t`/`\n` unescaped.
    pub(crate) text: String,
    /// Whether the output is a table with a header row.
    pub(crate) is_table: bool,
}

/// Strips `table`, expands `json`, trims spaces and turns the two-character
/// escapes `\t` and `\n` into real tabs and newlines.
pub(crate) fn prepare_format(format: &str) -> PreparedFormat {
    let is_table = format.starts_with(TABLE_PREFIX);
    let text = if is_table {
        &format[TABLE_PREFIX.len()..]
    } else if format == JSON_KEY {
        JSON_FORMAT
    } else {
        format
    };
    let text = text
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    PreparedFormat { text, is_table }
}

/// Renders rows with a prepared format the way docker's formatter does:
/// one rendered row per line; for tables a header row first and everything
/// aligned by the tab writer.
pub(crate) struct RowFormatter {
    prepared: PreparedFormat,
    tmpl: GoTemplate,
    /// The Go type docker formats these rows with, named in field errors.
    go_type: &'static str,
}

impl RowFormatter {
    /// Parses `format` (after [`prepare_format`]).
    ///
    /// # Errors
    /// [`TemplateError`] for an invalid template.
    pub(crate) fn new(format: &str) -> Result<Self, TemplateError> {
        let prepared = prepare_format(format);
        let tmpl = GoTemplate::parse(&prepared.text)?;
        Ok(RowFormatter {
            prepared,
            tmpl,
            go_type: "",
        })
    }

    /// Names docker's row type ("*formatter.imageContext") for error messages.
    pub(crate) fn with_go_type(mut self, go_type: &'static str) -> Self {
        self.go_type = go_type;
        self
    }

    /// Renders all `rows`; `headers` maps field names to column titles.
    ///
    /// # Errors
    /// [`TemplateError`] when a row fails to render.
    pub(crate) fn render(
        &self,
        headers: &[(&str, &str)],
        rows: &[Value],
    ) -> Result<String, TemplateError> {
        let mut body = String::new();
        for row in rows {
            // Rows are structs in docker, where a missing field reads differently.
            let text = self.tmpl.render(row).map_err(|e| {
                let mut msg =
                    e.0.replace(": map has no entry for key \"", ": can't evaluate field ");
                if msg.ends_with('"') {
                    msg.pop();
                    msg.push_str(&format!(" in type {}", self.go_type));
                }
                TemplateError(msg)
            })?;
            body.push_str(&text);
            body.push('\n');
        }
        if !self.prepared.is_table {
            return Ok(body);
        }
        let header_map: HashMap<String, Value> = headers
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::from(*v)))
            .collect();
        // Go ignores header rendering errors and prints what it has.
        let header = GoTemplate::parse_header(&self.prepared.text)
            .and_then(|t| t.render(&Value::Map(header_map)))
            .unwrap_or_default();
        let mut tw = super::tabwriter::TabWriter::for_table();
        tw.write(&header);
        tw.write("\n");
        tw.write(&body);
        Ok(tw.flush())
    }
}

/// Appends `| __goprint` to every action that prints its value, so that values
/// print as Go's `%v` would. Control actions (`if`, `range`, `end`, ...),
/// comments and variable declarations are left alone.
fn add_print_hooks(text: &str) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let action = &rest[start..];
        let Some(len) = action_len(action) else {
            // gtmpl reports this confusingly; say it as Go does.
            let line = 1 + text[..text.len() - action.len()].matches('\n').count();
            return Err(TemplateError(format!("template: :{line}: unclosed action")));
        };
        let action = &action[..len];
        out.push_str(&hook_action(action));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the action starting at `s` (which begins with "{{"), through its
/// closing "}}", skipping quoted strings; `None` when it never closes.
fn action_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 2;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q != b'`' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'`' || b == b'\'' {
                    quote = Some(b);
                } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i + 2);
                }
            }
        }
        i += 1;
    }
    None
}

fn hook_action(action: &str) -> String {
    let inner = &action[2..action.len() - 2];
    let (lead, body) = match inner.strip_prefix('-') {
        Some(b) if b.starts_with([' ', '\t', '\n']) => ("-", b),
        _ => ("", inner),
    };
    let (body, trail) = match body.strip_suffix('-') {
        Some(b) if b.ends_with([' ', '\t', '\n']) => (b, "-"),
        _ => (body, ""),
    };
    let trimmed = body.trim_start();
    let first_word: String = trimmed
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '/' || *c == '*')
        .collect();
    const CONTROL: [&str; 10] = [
        "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    ];
    let is_control = CONTROL.contains(&first_word.as_str()) || trimmed.starts_with("/*");
    if is_control || trimmed.is_empty() || is_declaration(trimmed) {
        return action.to_string();
    }
    format!("{{{{{lead}{} | {PRINT_HOOK} {trail}}}}}", body.trim_end())
}

/// `$x := ...` or `$x = ...`: a declaration prints nothing.
fn is_declaration(body: &str) -> bool {
    let Some(rest) = body.strip_prefix('$') else {
        return false;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
    let rest = rest.trim_start();
    rest.starts_with(":=")
        || (rest.starts_with('=') && !rest.starts_with("=="))
        || rest.starts_with(',')
}

/// Go's `fmt.Sprint(v)` for template values.
pub(crate) fn go_print(v: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, v, true);
    out
}

fn write_go(out: &mut String, v: &Value, top: bool) {
    match v {
        Value::NoValue => out.push_str("<no value>"),
        // A JSON null is a nil interface in Go: "<no value>" when printed
        // by itself, "<nil>" inside a slice or map.
        Value::Nil if top => out.push_str("<no value>"),
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::Function(_) => out.push_str("<func>"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, item, false);
            }
            out.push(']');
        }
        Value::Object(m) | Value::Map(m) => {
            out.push_str("map[");
            for (i, k) in visible_keys(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_go(out, &m[k], false);
            }
            out.push(']');
        }
    }
}

fn number_text(n: &gtmpl_value::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else if let Some(f) = n.as_f64() {
        go_float(f)
    } else {
        n.to_string()
    }
}

/// Go's `%v` for a float64: shortest digits, exponent from 1e21.
fn go_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if !(-4..21).contains(&exp) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').expect("{:e} has an exponent");
        let e: i32 = e.parse().expect("integer exponent");
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", e.abs());
    }
    format!("{f}")
}

/// Go's `json.Marshal` for template values (map keys sorted, no HTML escaping).
pub(crate) fn to_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, false);
    out
}

fn write_json(out: &mut String, v: &Value, escape_html: bool) {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(&json_string(s, escape_html)),
        Value::Number(n) => out.push_str(&number_json(n)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, escape_html);
            }
            out.push(']');
        }
        Value::Object(m) | Value::Map(m) => {
            out.push('{');
            let escape_html = escape_html || m.contains_key(ROW_MARKER);
            for (i, k) in visible_keys(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(k, escape_html));
                out.push(':');
                write_json(out, &m[k], escape_html);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Go encodes it: U+2028/U+2029 always escaped, `<>&` when asked.
fn json_string(s: &str, escape_html: bool) -> String {
    let encoded = serde_json::to_string(s).expect("strings serialize");
    let mut out = String::with_capacity(encoded.len());
    for c in encoded.chars() {
        match c {
            '<' if escape_html => out.push_str("\\u003c"),
            '>' if escape_html => out.push_str("\\u003e"),
            '&' if escape_html => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn number_json(n: &gtmpl_value::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else if let Some(f) = n.as_f64() {
        serde_json::Number::from_f64(f).map_or_else(|| "null".to_string(), |n| n.to_string())
    } else {
        n.to_string()
    }
}

/// Converts decoded JSON (an API response) into a template value. Objects
/// become `Object`s, so a missing field is an error as in docker.
pub(crate) fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// Builds a row object from string fields (docker's formatter contexts are
/// structs whose methods return strings).
pub(crate) fn row(fields: &[(&str, String)]) -> Value {
    let mut m: HashMap<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::from(v.as_str())))
        .collect();
    m.insert(ROW_MARKER.to_string(), Value::Bool(true));
    Value::Object(m)
}

fn arg_str(args: &[Value], i: usize, name: &str) -> Result<String, FuncError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(go_print(other)),
        None => Err(FuncError::AtLeastXArgs(name.to_string(), i + 1)),
    }
}

fn arg_int(args: &[Value], i: usize, name: &str) -> Result<i64, FuncError> {
    match args.get(i) {
        Some(Value::Number(n)) => n.as_i64().ok_or(FuncError::UnableToConvertFromValue),
        Some(Value::String(s)) => s.parse().map_err(|_| FuncError::UnableToConvertFromValue),
        Some(_) => Err(FuncError::UnableToConvertFromValue),
        None => Err(FuncError::AtLeastXArgs(name.to_string(), i + 1)),
    }
}

fn go_print_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(match args.first() {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(v) => Value::from(go_print(v)),
        None => Value::from(""),
    })
}

fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(to_json(args.first().unwrap_or(&Value::Nil))))
}

fn split_func(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "split")?;
    let sep = arg_str(args, 1, "split")?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::from(c.to_string())).collect()
    } else {
        s.split(sep.as_str()).map(Value::from).collect()
    };
    Ok(Value::Array(parts))
}

fn join_func(args: &[Value]) -> Result<Value, FuncError> {
    let sep = arg_str(args, 1, "join")?;
    match args.first() {
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(go_print).collect();
            Ok(Value::from(parts.join(&sep)))
        }
        Some(Value::Nil) | Some(Value::NoValue) => Ok(Value::from("")),
        Some(_) => Err(FuncError::Generic(
            "wrong type for value; expected []string".into(),
        )),
        None => Err(FuncError::AtLeastXArgs("join".into(), 2)),
    }
}

fn title_func(args: &[Value]) -> Result<Value, FuncError> {
    // strings.Title: upper-case the first letter of each word; letters,
    // digits, '_' and '\'' do not separate words.
    let s = arg_str(args, 0, "title")?;
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    Ok(Value::from(out))
}

fn lower_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(arg_str(args, 0, "lower")?.to_lowercase()))
}

fn upper_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(arg_str(args, 0, "upper")?.to_uppercase()))
}

fn pad_func(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "pad")?;
    if s.is_empty() {
        return Ok(Value::from(s));
    }
    let pre = arg_int(args, 1, "pad")?.max(0) as usize;
    let post = arg_int(args, 2, "pad")?.max(0) as usize;
    Ok(Value::from(format!(
        "{}{s}{}",
        " ".repeat(pre),
        " ".repeat(post)
    )))
}

fn truncate_func(args: &[Value]) -> Result<Value, FuncError> {
    let s = arg_str(args, 0, "truncate")?;
    let n = arg_int(args, 1, "truncate")?.max(0) as usize;
    if s.len() < n {
        return Ok(Value::from(s));
    }
    // Go slices bytes; stay on a character boundary.
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(Value::from(&s[..end]))
}

fn identity_func(args: &[Value]) -> Result<Value, FuncError> {
    Ok(args.first().cloned().unwrap_or(Value::from("")))
}

/// docker's `templates.basicFunctions`.
const BASIC_FUNCS: &[(&str, Func)] = &[
    ("json", json_func),
    ("split", split_func),
    ("join", join_func),
    ("title", title_func),
    ("lower", lower_func),
    ("upper", upper_func),
    ("pad", pad_func),
    ("truncate", truncate_func),
];

/// docker's `templates.HeaderFunctions`: keep column titles as they are.
const HEADER_FUNCS: &[(&str, Func)] = &[
    ("json", identity_func),
    ("split", identity_func),
    ("join", identity_func),
    ("title", identity_func),
    ("lower", identity_func),
    ("upper", identity_func),
    ("pad", pad_func),
    ("truncate", identity_func),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, data: &serde_json::Value) -> String {
        GoTemplate::parse(text)
            .unwrap()
            .render(&from_json(data))
            .unwrap()
    }

    #[test]
    fn arrays_and_maps_print_like_go() {
        let data = serde_json::json!({"Tags": ["a:1", "b:2"], "Labels": {"z": "1", "a": "2"}});
        assert_eq!(render("{{.Tags}}", &data), "[a:1 b:2]");
        assert_eq!(render("{{.Labels}}", &data), "map[a:2 z:1]");
    }

    #[test]
    fn control_actions_and_declarations_are_not_hooked() {
        let data = serde_json::json!({"Tags": ["a", "b"], "N": 3});
        assert_eq!(render("{{range .Tags}}{{.}},{{end}}", &data), "a,b,");
        assert_eq!(render("{{$x := .N}}{{$x}}", &data), "3");
        assert_eq!(render("{{if .N}}yes{{else}}no{{end}}", &data), "yes");
        assert_eq!(render("{{- .N -}} ", &data), "3");
    }

    #[test]
    fn docker_functions_behave_like_go() {
        let data =
            serde_json::json!({"Tags": ["a", "b"], "S": "hello world", "M": {"b": 1, "a": [true]}});
        assert_eq!(render("{{join .Tags \", \"}}", &data), "a, b");
        assert_eq!(render("{{json .M}}", &data), r#"{"a":[true],"b":1}"#);
        assert_eq!(render("{{upper .S}}", &data), "HELLO WORLD");
        assert_eq!(render("{{title .S}}", &data), "Hello World");
        assert_eq!(render("{{truncate .S 5}}", &data), "hello");
        assert_eq!(render("{{pad .S 1 2}}|", &data), " hello world  |");
        assert_eq!(render("{{split .S \" \"}}", &data), "[hello world]");
        assert_eq!(render("{{index (split .S \" \") 1}}", &data), "world");
        assert_eq!(render("{{json .S}}", &data), "\"hello world\"");
    }

    #[test]
    fn quoted_braces_do_not_end_an_action() {
        let data = serde_json::json!({"S": "x"});
        assert_eq!(render("{{printf \"%s}}\" .S}}", &data), "x}}");
    }

    #[test]
    fn prepare_format_strips_table_and_unescapes() {
        let p = prepare_format("table {{.ID}}\\t{{.Tag}}");
        assert!(p.is_table);
        assert_eq!(p.text, "{{.ID}}\t{{.Tag}}");
        assert_eq!(prepare_format("json").text, JSON_FORMAT);
    }

    #[test]
    fn table_format_renders_header_and_aligns() {
        let f = RowFormatter::new("table {{.ID}}\t{{lower .Tag}}").unwrap();
        let rows = vec![row(&[("ID", "abc".into()), ("Tag", "LATEST".into())])];
        let out = f
            .render(&[("ID", "IMAGE ID"), ("Tag", "TAG")], &rows)
            .unwrap();
        assert_eq!(out, "IMAGE ID   TAG\nabc        latest\n");
    }

    #[test]
    fn row_json_escapes_html_like_go_marshal() {
        let f = RowFormatter::new("json").unwrap();
        let rows = vec![row(&[("Tag", "<none>".into())])];
        assert_eq!(
            f.render(&[], &rows).unwrap(),
            "{\"Tag\":\"\\u003cnone\\u003e\"}\n"
        );
        let data = serde_json::json!({"S": "<a&b>"});
        assert_eq!(render("{{json .S}}", &data), "\"<a&b>\"");
    }

    #[test]
    fn unclosed_action_reads_like_go() {
        let Err(e) = GoTemplate::parse("a\n{{.Id") else {
            panic!("parsed")
        };
        assert_eq!(
            e.to_string(),
            "template parsing error: template: :2: unclosed action"
        );
    }

    #[test]
    fn aliases_resolve_but_stay_out_of_json() {
        let mut v = from_json(&serde_json::json!({"Id": "x", "ApiVersion": "1.44"}));
        add_aliases(&mut v, &[("Id", "ID"), ("ApiVersion", "APIVersion")]);
        let t = GoTemplate::parse("{{.ID}} {{.APIVersion}} {{json .}}").unwrap();
        assert_eq!(
            t.render(&v).unwrap(),
            r#"x 1.44 {"ApiVersion":"1.44","Id":"x"}"#
        );
    }

    #[test]
    fn null_prints_no_value_alone_and_nil_inside() {
        let data = serde_json::json!({"N": null, "A": [null]});
        assert_eq!(render("{{.N}} {{.A}}", &data), "<no value> [<nil>]");
    }

    #[test]
    fn unknown_field_is_an_error_naming_its_position() {
        let f = RowFormatter::new("{{.Nope}}")
            .unwrap()
            .with_go_type("*formatter.imageContext");
        let rows = vec![row(&[("ID", "abc".into())])];
        assert_eq!(
            f.render(&[], &rows).unwrap_err().to_string(),
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.imageContext"
        );
        let t = GoTemplate::parse("x\n  {{.Nope}}").unwrap();
        let err = t.render(&from_json(&serde_json::json!({}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "template parsing error: template: :2:4: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
        );
    }

    #[test]
    fn go_float_matches_percent_v() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(1e21), "1e+21");
    }
}
