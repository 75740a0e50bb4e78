//! The LVM2 text format (the same syntax as lvm.conf): nested sections of
//! `name { ... }` and assignments `key = value`, where a value is an
//! integer, a float, a quoted string or a list `[ ... ]` of those.

/// Nesting deeper than this is refused (VG metadata nests five levels).
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    /// Kept as written: nothing in VG metadata needs its value.
    Float(String),
    Str(String),
    List(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Value(Value),
    Section(Section),
}

/// A section's entries in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    pub entries: Vec<(String, Node)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("LVM metadata text, line {line}: {what}")]
pub struct SyntaxError {
    pub line: usize,
    pub what: String,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key) {
            Some(Node::Section(s)) => Some(s),
            _ => None,
        }
    }

    pub fn value(&self, key: &str) -> Option<&Value> {
        match self.get(key) {
            Some(Node::Value(v)) => Some(v),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.value(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.value(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn list(&self, key: &str) -> Option<&[Value]> {
        match self.value(key) {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }

    /// The subsections, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, n)| match n {
            Node::Section(s) => Some((k.as_str(), s)),
            Node::Value(_) => None,
        })
    }

    /// Every string anywhere below this section, in lists too.
    pub fn strings(&self) -> Vec<&str> {
        fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Str(s) => out.push(s),
                Value::List(l) => l.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (_, n) in &self.entries {
            match n {
                Node::Value(v) => walk(v, &mut out),
                Node::Section(s) => out.extend(s.strings()),
            }
        }
        out
    }
}

/// Parses a whole text into its top-level section.
pub fn parse(text: &str) -> Result<Section, SyntaxError> {
    let mut p = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    let top = p.entries(0)?;
    match p.peek() {
        None => Ok(top),
        Some((line, _)) => Err(SyntaxError {
            line,
            what: "unexpected '}'".into(),
        }),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, SyntaxError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() || c == '\0' => {}
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '{' | '}' | '[' | ']' | '=' | ',' => out.push((line, Token::Punct(c))),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(SyntaxError {
                                line: start,
                                what: "unterminated string".into(),
                            })
                        }
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                    }
                }
                out.push((start, Token::Str(s)));
            }
            c => {
                let mut w = String::from(c);
                while let Some(c) = chars.next_if(|&c| !is_separator(c)) {
                    w.push(c);
                }
                out.push((line, Token::Word(w)));
            }
        }
    }
    Ok(out)
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | '[' | ']' | '=' | ',' | '"' | '#' | '\0')
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.at).map(|(l, t)| (*l, t))
    }

    fn next(&mut self) -> Option<(usize, Token)> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.at.min(self.tokens.len().saturating_sub(1)))
            .map_or(0, |(l, _)| *l)
    }

    fn error(&self, what: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line(),
            what: what.into(),
        }
    }

    /// Entries up to the end of the text or a closing brace (not consumed).
    fn entries(&mut self, depth: usize) -> Result<Section, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("sections nested too deep"));
        }
        let mut section = Section::default();
        loop {
            let key = match self.peek() {
                None | Some((_, Token::Punct('}'))) => return Ok(section),
                Some((_, Token::Word(w))) => w.clone(),
                Some((_, Token::Str(s))) => s.clone(),
                Some((_, t)) => return Err(self.error(format!("expected a name, found {t:?}"))),
            };
            self.at += 1;
            match self.next() {
                Some((_, Token::Punct('{'))) => {
                    let inner = self.entries(depth + 1)?;
                    match self.next() {
                        Some((_, Token::Punct('}'))) => {}
                        _ => return Err(self.error(format!("section {key} is not closed"))),
                    }
                    section.entries.push((key, Node::Section(inner)));
                }
                Some((_, Token::Punct('='))) => {
                    let value = self.value(depth + 1)?;
                    section.entries.push((key, Node::Value(value)));
                }
                _ => return Err(self.error(format!("expected '=' or '{{' after {key}"))),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("lists nested too deep"));
        }
        match self.next() {
            Some((_, Token::Str(s))) => Ok(Value::Str(s)),
            Some((_, Token::Word(w))) => {
                number(&w).ok_or_else(|| self.error(format!("{w:?} is not a number")))
            }
            Some((_, Token::Punct('['))) => {
                let mut items = Vec::new();
                loop {
                    if let Some((_, Token::Punct(']'))) = self.peek() {
                        self.at += 1;
                        return Ok(Value::List(items));
                    }
                    items.push(self.value(depth + 1)?);
                    match self.next() {
                        Some((_, Token::Punct(','))) => {}
                        Some((_, Token::Punct(']'))) => return Ok(Value::List(items)),
                        _ => return Err(self.error("expected ',' or ']' in a list")),
                    }
                }
            }
            _ => Err(self.error("expected a value")),
        }
    }
}

fn number(w: &str) -> Option<Value> {
    if let Ok(i) = w.parse::<i64>() {
        return Some(Value::Int(i));
    }
    w.parse::<f64>().ok().map(|_| Value::Float(w.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vg_metadata_shapes() {
        let text = "vg0 {\nid = \"abc\" # comment\nseqno = 3\nstatus = [\"READ\", \"WRITE\"]\n\
                    flags = []\nlogical_volumes {\nlv-1.x+ {\nstripes = [\n\"pv0\", 0,\n\"pv1\", 7\n]\n}\n}\n}\n\
                    contents = \"Text \\\"Format\\\"\"\nversion = 1\nf = 1.5\n\0\0";
        let top = parse(text).unwrap();
        let vg = top.section("vg0").unwrap();
        assert_eq!(vg.str("id"), Some("abc"));
        assert_eq!(vg.int("seqno"), Some(3));
        assert_eq!(vg.list("flags"), Some(&[][..]));
        let lv = vg
            .section("logical_volumes")
            .unwrap()
            .section("lv-1.x+")
            .unwrap();
        assert_eq!(
            lv.list("stripes").unwrap(),
            &[
                Value::Str("pv0".into()),
                Value::Int(0),
                Value::Str("pv1".into()),
                Value::Int(7)
            ]
        );
        assert_eq!(top.str("contents"), Some("Text \"Format\""));
        assert_eq!(top.value("f"), Some(&Value::Float("1.5".into())));
        assert_eq!(vg.strings(), vec!["abc", "READ", "WRITE", "pv0", "pv1"]);
    }

    #[test]
    fn rejects_broken_text_with_a_line() {
        for (text, line) in [
            ("a {\nb = 1\n", 2),
            ("a = \"x", 1),
            ("a {\n}\n}", 3),
            ("a = [1 2]", 1),
            ("x = y", 1),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
        let deep = "a {".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
