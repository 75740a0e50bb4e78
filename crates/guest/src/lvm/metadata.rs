//! The LVM2 text metadata format: `key = value`, `name { ... }`, lists in
//! brackets, `#` comments.

/// A value of the metadata tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(u64),
    Str(String),
    List(Vec<Value>),
    Section(Vec<(String, Value)>),
}

impl Value {
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Section(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub(crate) fn int(&self, key: &str) -> Option<u64> {
        match self.get(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub(crate) fn list(&self, key: &str) -> Option<&[Value]> {
        match self.get(key) {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }
    /// The named subsections.
    pub(crate) fn sections(&self) -> impl Iterator<Item = (&str, &Value)> {
        let items: &[(String, Value)] = match self {
            Value::Section(items) => items,
            _ => &[],
        };
        items
            .iter()
            .filter(|(_, v)| matches!(v, Value::Section(_)))
            .map(|(k, v)| (k.as_str(), v))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Int(u64),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() || c == ',' => {
                chars.next();
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' | '}' | '[' | ']' | '=' => {
                out.push(Token::Punct(c));
                chars.next();
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated string in LVM metadata".into()),
                    }
                }
                out.push(Token::Str(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "{}[]=,\"#".contains(c) {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                match w.parse::<u64>() {
                    Ok(i) => out.push(Token::Int(i)),
                    Err(_) if w.parse::<f64>().is_ok() => out.push(Token::Int(0)),
                    Err(_) => out.push(Token::Word(w)),
                }
            }
        }
    }
    Ok(out)
}

/// Parses metadata text into a section tree.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    let tokens = tokenize(text)?;
    let mut at = 0;
    let root = section_body(&tokens, &mut at, 0)?;
    if at != tokens.len() {
        return Err("unbalanced braces in LVM metadata".into());
    }
    Ok(root)
}

fn section_body(tokens: &[Token], at: &mut usize, depth: usize) -> Result<Value, String> {
    if depth > 32 {
        return Err("LVM metadata nested too deep".into());
    }
    let mut items = Vec::new();
    loop {
        match tokens.get(*at) {
            None => return Ok(Value::Section(items)),
            Some(Token::Punct('}')) if depth > 0 => return Ok(Value::Section(items)),
            Some(Token::Word(key)) => {
                *at += 1;
                match tokens.get(*at) {
                    Some(Token::Punct('{')) => {
                        *at += 1;
                        let body = section_body(tokens, at, depth + 1)?;
                        if tokens.get(*at) != Some(&Token::Punct('}')) {
                            return Err(format!("section {key} is not closed"));
                        }
                        *at += 1;
                        items.push((key.clone(), body));
                    }
                    Some(Token::Punct('=')) => {
                        *at += 1;
                        let v = value(tokens, at)?;
                        items.push((key.clone(), v));
                    }
                    _ => return Err(format!("expected = or {{ after {key}")),
                }
            }
            Some(t) => return Err(format!("unexpected {t:?} in LVM metadata")),
        }
    }
}

fn value(tokens: &[Token], at: &mut usize) -> Result<Value, String> {
    let t = tokens
        .get(*at)
        .ok_or("value missing at end of LVM metadata")?;
    *at += 1;
    match t {
        Token::Int(i) => Ok(Value::Int(*i)),
        Token::Str(s) | Token::Word(s) => Ok(Value::Str(s.clone())),
        Token::Punct('[') => {
            let mut list = Vec::new();
            loop {
                match tokens.get(*at) {
                    Some(Token::Punct(']')) => {
                        *at += 1;
                        return Ok(Value::List(list));
                    }
                    Some(_) => list.push(value(tokens, at)?),
                    None => return Err("unterminated list in LVM metadata".into()),
                }
            }
        }
        Token::Punct(c) => Err(format!("unexpected {c} in LVM metadata")),
    }
}
