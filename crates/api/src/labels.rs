//! Label selectors, as Kubernetes' `labels.Selector`: parsed from a request's
//! `labelSelector` string (`a=b,c!=d,e in (f,g),!h,i,j>3`) by apimachinery's lexer and
//! parser, or read from a `metav1.LabelSelector` object (an aggregation rule's), and
//! matched against an object's labels.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Status;
use crate::names::{label_value_errors, qualified_name_errors};

/// A requirement's operator (apimachinery's `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Equals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One label requirement: a key, an operator and its values (sorted, each once).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    /// `Requirement.Matches`.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let has = |v: &String| self.values.contains(v);
        match self.op {
            Op::In | Op::Equals => value.is_some_and(has),
            Op::NotIn | Op::NotEquals => value.is_none_or(|v| !has(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let number = |v: &str| v.parse::<i64>().ok();
                let (Some(label), [bound]) =
                    (value.and_then(|v| number(v)), self.values.as_slice())
                else {
                    return false;
                };
                number(bound).is_some_and(|bound| match self.op {
                    Op::GreaterThan => label > bound,
                    _ => label < bound,
                })
            }
        }
    }
}

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses a `labelSelector` (`a=b,c!=d,e in (f,g),!h,i,j>3`) as apimachinery's
    /// `labels.Parse` does, refusing what it refuses in its words.
    pub fn parse(s: &str) -> Result<Self, Status> {
        let tokens = lex(s);
        Parser { tokens, at: 0 }
            .selector()
            .map(Self)
            .map_err(Status::bad_request)
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// A `metav1.LabelSelector` object: every `matchLabels` pair, and every
    /// `matchExpressions` requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`), as
    /// `LabelSelectorAsSelector` reads it; `None` when it does not read (an unknown
    /// operator), which selects nothing. An empty object selects everything.
    pub fn from_object(selector: &Value) -> Option<Self> {
        let mut reqs = Vec::new();
        for (k, v) in selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let values = vec![v.as_str()?.to_owned()];
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::Equals,
                values,
            });
        }
        for e in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e["key"].as_str().unwrap_or_default().to_owned();
            let values: Vec<String> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let op = match e["operator"].as_str()? {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => return None,
            };
            reqs.push(Requirement { key, op, values });
        }
        Some(Self(reqs))
    }

    /// True when it selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A token of the selector's lexer, with its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// The token a word or a run of symbols is, if it is one.
fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_special(b: u8) -> bool {
    b"=!(),><".contains(&b)
}

fn is_space(b: u8) -> bool {
    b" \t\r\n".contains(&b)
}

/// apimachinery's `Lexer`, byte for byte: identifiers and keywords split at white space and
/// symbols, the longest run of symbols that is a token, to the end of the string. A NUL
/// byte reads as the end where a token would start, and is passed over inside one.
fn lex(s: &str) -> Vec<(Token, String)> {
    let b = s.as_bytes();
    let mut pos = 0;
    // `read`: the next byte, or 0 at the end (where the position stays).
    let read = |pos: &mut usize| match b.get(*pos) {
        Some(&c) => {
            *pos += 1;
            c
        }
        None => 0,
    };
    let mut tokens = Vec::new();
    loop {
        let mut c = read(&mut pos);
        while is_space(c) {
            c = read(&mut pos);
        }
        if c == 0 {
            tokens.push((Token::End, String::new()));
            return tokens;
        }
        pos -= 1;
        let mut buffer = Vec::new();
        if is_special(c) {
            let mut last: Option<(Token, usize)> = None;
            loop {
                let c = read(&mut pos);
                if c == 0 {
                    break;
                }
                if !is_special(c) {
                    pos -= 1;
                    break;
                }
                buffer.push(c);
                match keyword(&String::from_utf8_lossy(&buffer)) {
                    Some(t) => last = Some((t, buffer.len())),
                    None if last.is_some() => {
                        pos -= 1;
                        break;
                    }
                    None => {}
                }
            }
            // Every symbol alone is a token, so a run always starts with one.
            let (t, len) = last.unwrap_or((Token::Identifier, buffer.len()));
            tokens.push((t, String::from_utf8_lossy(&buffer[..len]).into_owned()));
        } else {
            loop {
                let c = read(&mut pos);
                if c == 0 {
                    break;
                }
                if is_special(c) || is_space(c) {
                    pos -= 1;
                    break;
                }
                buffer.push(c);
            }
            let word = String::from_utf8_lossy(&buffer).into_owned();
            tokens.push((keyword(&word).unwrap_or(Token::Identifier), word));
        }
    }
}

/// apimachinery's `Parser` over the lexed tokens; errors in its words.
struct Parser {
    tokens: Vec<(Token, String)>,
    at: usize,
}

/// Whether a token is read where values stand (`in` and `notin` are then identifiers).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

impl Parser {
    fn lookahead(&self, cx: Context) -> (Token, &str) {
        let (t, lit) = &self.tokens[self.at.min(self.tokens.len() - 1)];
        (as_read(*t, cx), lit)
    }

    fn consume(&mut self, cx: Context) -> (Token, String) {
        let (t, lit) = self.tokens[self.at.min(self.tokens.len() - 1)].clone();
        self.at += 1;
        (as_read(t, cx), lit)
    }

    fn selector(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (t, lit) = self.lookahead(Context::Values);
            match t {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    match self.consume(Context::Values) {
                        (Token::End, _) => return Ok(reqs),
                        (Token::Comma, _) => {
                            let (t, lit) = self.lookahead(Context::Values);
                            if t != Token::Identifier && t != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{lit}', expected: identifier after ','"
                                ));
                            }
                        }
                        (_, lit) => {
                            return Err(format!("found '{lit}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Token::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, unary) = self.key_and_inferred_operator()?;
        if let Some(op) = unary {
            return Ok(Requirement {
                key,
                op,
                values: Vec::new(),
            });
        }
        let op = self.operator()?;
        let values = match op {
            Op::In | Op::NotIn => self.values()?,
            _ => vec![self.exact_value()?],
        };
        let mut values = values;
        values.sort();
        values.dedup();
        requirement_errors(&key, op, &values)?;
        Ok(Requirement { key, op, values })
    }

    /// The key, and the operator when the key stands alone (`k`, `!k`).
    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Op>), String> {
        let (mut t, mut lit) = self.consume(Context::Values);
        let negated = t == Token::DoesNotExist;
        if negated {
            (t, lit) = self.consume(Context::Values);
        }
        if t != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let errors = qualified_name_errors(&lit);
        if !errors.is_empty() {
            // apimachinery reports the key at a path it leaves unset.
            return Err(format!(
                "<nil>: Invalid value: {lit:?}: {}",
                errors.join("; ")
            ));
        }
        let alone = matches!(self.lookahead(Context::Values).0, Token::End | Token::Comma);
        let op = match (negated, alone) {
            (true, _) => Some(Op::DoesNotExist),
            (false, true) => Some(Op::Exists),
            (false, false) => None,
        };
        Ok((lit, op))
    }

    fn operator(&mut self) -> Result<Op, String> {
        let (t, lit) = self.consume(Context::KeyAndOperator);
        Ok(match t {
            Token::In => Op::In,
            Token::Equals | Token::DoubleEquals => Op::Equals,
            Token::GreaterThan => Op::GreaterThan,
            Token::LessThan => Op::LessThan,
            Token::NotIn => Op::NotIn,
            Token::NotEquals => Op::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `(v1,v2,…)`: the set of values.
    fn values(&mut self) -> Result<Vec<String>, String> {
        let (t, lit) = self.consume(Context::Values);
        if t != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (t, lit) = self.lookahead(Context::Values);
        let lit = lit.to_owned();
        match t {
            Token::Identifier | Token::Comma => {
                let set = self.identifiers()?;
                if self.consume(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// `parseIdentifiersList`: values between commas, an empty one where two commas meet or
    /// a comma is first or last.
    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut set: Vec<String> = Vec::new();
        loop {
            match self.consume(Context::Values) {
                (Token::Identifier, lit) => {
                    set.push(lit);
                    match self.lookahead(Context::Values) {
                        (Token::Comma, _) => {}
                        (Token::ClosedPar, _) => return Ok(set),
                        (_, lit) => return Err(format!("found '{lit}', expected: ',' or ')'")),
                    }
                }
                (Token::Comma, _) => {
                    if set.is_empty() {
                        set.push(String::new());
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosedPar => {
                            set.push(String::new());
                            return Ok(set);
                        }
                        Token::Comma => {
                            self.consume(Context::Values);
                            set.push(String::new());
                        }
                        _ => {}
                    }
                }
                (_, lit) => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    /// The one value of `=`, `==`, `!=`, `>` or `<`: empty before a comma or the end.
    fn exact_value(&mut self) -> Result<String, String> {
        if matches!(self.lookahead(Context::Values).0, Token::End | Token::Comma) {
            return Ok(String::new());
        }
        match self.consume(Context::Values) {
            (Token::Identifier, lit) => Ok(lit),
            (_, lit) => Err(format!("found '{lit}', expected: identifier")),
        }
    }
}

/// `in` and `notin` where values stand are values.
fn as_read(t: Token, cx: Context) -> Token {
    match (t, cx) {
        (Token::In | Token::NotIn, Context::Values) => Token::Identifier,
        _ => t,
    }
}

/// `NewRequirement`'s checks of the values, aggregated as apimachinery prints them.
fn requirement_errors(key: &str, op: Op, values: &[String]) -> Result<(), String> {
    let mut errors = Vec::new();
    if matches!(op, Op::GreaterThan | Op::LessThan) {
        for (i, v) in values.iter().enumerate() {
            if v.parse::<i64>().is_err() {
                errors.push(format!(
                    "values[{i}]: Invalid value: {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let invalid = label_value_errors(v);
        if !invalid.is_empty() {
            errors.push(format!(
                "values[{i}][{key}]: Invalid value: {v:?}: {}",
                invalid.join("; ")
            ));
        }
    }
    errors.dedup();
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "3")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier=back", false),
            ("missing notin (x)", true),
            ("app in (db,,web)", true),
            ("app in (,,web)", true),
            ("app notin (,)", true),
            ("in", false),
            ("tier in (in,notin,front)", true),
            ("  app  =  web  ,  tier  ", true),
            ("n>2", true),
            ("n<3", false),
            ("n>0,n<10", true),
            ("\0app=db", true),
            ("tier\0", true),
            ("app>1", false),
            ("missing<1", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn malformed_label_selectors_are_refused_in_apimachinerys_words() {
        let rule = crate::names::label_value_errors("-b").join("; ");
        let key_rule = crate::names::qualified_name_errors("-a").join("; ");
        for (sel, want) in [
            ("a=b=c", "found '=', expected: ',' or 'end of string'".to_owned()),
            ("a=b c", "found 'c', expected: ',' or 'end of string'".to_owned()),
            ("a,", "found '', expected: identifier after ','".to_owned()),
            ("a,,b", "found ',', expected: identifier after ','".to_owned()),
            (",a", "found ',', expected: !, identifier, or 'end of string'".to_owned()),
            ("A B", "unable to parse requirement: found 'B', expected: in, notin, =, ==, !=, gt, lt".to_owned()),
            ("a gt 1", "unable to parse requirement: found 'gt', expected: in, notin, =, ==, !=, gt, lt".to_owned()),
            ("a in b", "unable to parse requirement: found 'b' expected: '('".to_owned()),
            ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'".to_owned()),
            ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'".to_owned()),
            ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier".to_owned()),
            ("a=(", "unable to parse requirement: found '(', expected: identifier".to_owned()),
            ("!=a", "found '!=', expected: !, identifier, or 'end of string'".to_owned()),
            ("!!a", "unable to parse requirement: found '!', expected: identifier".to_owned()),
            ("a in (x,,)", "unable to parse requirement: found ')', expected: ',', or identifier".to_owned()),
            ("a\0b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".to_owned()),
            ("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer".to_owned()),
            ("a=-b", format!("unable to parse requirement: values[0][a]: Invalid value: \"-b\": {rule}")),
            ("-a=b", format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {key_rule}")),
        ] {
            let got = LabelSelector::parse(sel).expect_err(sel);
            assert_eq!(got.code, 400, "{sel}");
            assert_eq!(got.message, want, "{sel}");
        }
    }

    #[test]
    fn label_selector_objects_match_like_kubernetes() {
        let l = labels(&[("a", "1")]);
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "a", "operator": op, "values": values}]});
        let matches = |sel: &Value| LabelSelector::from_object(sel).is_some_and(|s| s.matches(&l));
        assert!(matches(&json!({})));
        assert!(matches(&json!({"matchLabels": {"a": "1"}})));
        assert!(!matches(&json!({"matchLabels": {"a": "2"}})));
        assert!(matches(&expr("In", json!(["1", "3"]))));
        assert!(!matches(&expr("NotIn", json!(["1"]))));
        assert!(matches(&expr("Exists", json!([]))));
        assert!(!matches(&expr("DoesNotExist", json!([]))));
        assert!(LabelSelector::from_object(&expr("Bogus", json!([]))).is_none());
    }
}
