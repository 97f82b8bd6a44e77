//! PATTERN: compiled to a small backtracking program whose choice points are ordered by
//! preference (greedy quantifiers try one more row first, reluctant ones one less, the left
//! alternative before the right), so the first match a depth-first search finds is the
//! preferred match of SQL's row pattern matching.
//!
//! Matching runs on a stream: when the preferred path needs a row that has not arrived yet,
//! the answer is "pending" — unless no row still to come could fit (the input has ended, or
//! the watermark is already past WITHIN of the match's first row).

use sqlparser::ast::{MatchRecognizePattern, MatchRecognizeSymbol, RepetitionQuantifier};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    /// Consume one row if the variable's DEFINE holds for it.
    Var(u8),
    /// Try the first target, then the second.
    Split(usize, usize),
    Jmp(usize),
    Match,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    insts: Vec<Inst>,
    /// Variables in order of first appearance.
    pub vars: Vec<String>,
}

/// A pattern AST with reluctance made explicit.
enum Node {
    Var(u8),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
}

/// Limit on `{n,m}` expansion (each repetition is a copy of the body).
const MAX_REPEAT: u32 = 1000;

impl Program {
    pub fn compile(pattern: &MatchRecognizePattern) -> Result<Self, String> {
        let mut vars = Vec::new();
        let node = lower(pattern, &mut vars)?;
        if nullable(&node) {
            return Err("the PATTERN can match zero rows; it must need at least one".into());
        }
        let mut insts = Vec::new();
        emit(&node, &mut insts)?;
        insts.push(Inst::Match);
        Ok(Self { insts, vars })
    }
}

fn lower(p: &MatchRecognizePattern, vars: &mut Vec<String>) -> Result<Node, String> {
    use MatchRecognizePattern as P;
    Ok(match p {
        P::Symbol(MatchRecognizeSymbol::Named(id)) => {
            let index = match vars.iter().position(|v| *v == id.value) {
                Some(i) => i,
                None => {
                    vars.push(id.value.clone());
                    vars.len() - 1
                }
            };
            if vars.len() > 250 {
                return Err("too many pattern variables".into());
            }
            Node::Var(index as u8)
        }
        P::Symbol(s) => return Err(format!("the anchor {s} is not supported")),
        P::Exclude(s) => return Err(format!("exclusion {{- {s} -}} is not supported")),
        P::Permute(_) => return Err("PERMUTE is not supported".into()),
        P::Concat(ps) => Node::Concat(
            ps.iter()
                .map(|p| lower(p, vars))
                .collect::<Result<_, _>>()?,
        ),
        P::Group(p) => lower(p, vars)?,
        P::Alternation(ps) => Node::Alt(
            ps.iter()
                .map(|p| lower(p, vars))
                .collect::<Result<_, _>>()?,
        ),
        // sqlparser reads `A+?` as `(A+)?` without a group: that is the reluctant `+`.
        P::Repetition(inner, RepetitionQuantifier::AtMostOne)
            if matches!(**inner, P::Repetition(..)) =>
        {
            let P::Repetition(body, q) = &**inner else {
                unreachable!("matched above")
            };
            repeat(lower(body, vars)?, q, false)?
        }
        P::Repetition(body, q) => repeat(lower(body, vars)?, q, true)?,
    })
}

fn repeat(node: Node, q: &RepetitionQuantifier, greedy: bool) -> Result<Node, String> {
    use RepetitionQuantifier as Q;
    let (min, max) = match *q {
        Q::ZeroOrMore => (0, None),
        Q::OneOrMore => (1, None),
        Q::AtMostOne => (0, Some(1)),
        Q::Exactly(n) => (n, Some(n)),
        Q::AtLeast(n) => (n, None),
        Q::AtMost(n) => (0, Some(n)),
        Q::Range(n, m) if n <= m => (n, Some(m)),
        Q::Range(n, m) => return Err(format!("{{{n},{m}}}: the minimum exceeds the maximum")),
    };
    if min.max(max.unwrap_or(0)) > MAX_REPEAT {
        return Err(format!("repetitions above {MAX_REPEAT} are not supported"));
    }
    if nullable(&node) && max.is_none() {
        return Err("a repeated part of the PATTERN can match zero rows".into());
    }
    Ok(Node::Repeat {
        node: Box::new(node),
        min,
        max,
        greedy,
    })
}

fn nullable(n: &Node) -> bool {
    match n {
        Node::Var(_) => false,
        Node::Concat(ns) => ns.iter().all(nullable),
        Node::Alt(ns) => ns.iter().any(nullable),
        Node::Repeat { node, min, .. } => *min == 0 || nullable(node),
    }
}

fn emit(n: &Node, out: &mut Vec<Inst>) -> Result<(), String> {
    match n {
        Node::Var(v) => out.push(Inst::Var(*v)),
        Node::Concat(ns) => {
            for n in ns {
                emit(n, out)?;
            }
        }
        Node::Alt(ns) => {
            let mut jumps = Vec::new();
            for (i, n) in ns.iter().enumerate() {
                if i + 1 < ns.len() {
                    let split = out.len();
                    out.push(Inst::Split(split + 1, 0));
                    emit(n, out)?;
                    jumps.push(out.len());
                    out.push(Inst::Jmp(0));
                    let next = out.len();
                    out[split] = Inst::Split(split + 1, next);
                } else {
                    emit(n, out)?;
                }
            }
            let end = out.len();
            for j in jumps {
                out[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat {
            node,
            min,
            max,
            greedy,
        } => {
            for _ in 0..*min {
                emit(node, out)?;
            }
            let choice = |body: usize, skip: usize| {
                if *greedy {
                    Inst::Split(body, skip)
                } else {
                    Inst::Split(skip, body)
                }
            };
            match max {
                None => {
                    let split = out.len();
                    out.push(Inst::Jmp(0));
                    emit(node, out)?;
                    out.push(Inst::Jmp(split));
                    let end = out.len();
                    out[split] = choice(split + 1, end);
                }
                Some(max) => {
                    // Nested optionals: a later copy only after an earlier one matched.
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(out.len());
                        out.push(Inst::Jmp(0));
                        emit(node, out)?;
                    }
                    let end = out.len();
                    for s in splits {
                        out[s] = choice(s + 1, end);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The answer for one start row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The preferred match: the variable of each of its rows.
    Match(Vec<u8>),
    /// No match can start here, whatever comes.
    NoMatch,
    /// The preferred path needs rows that have not arrived.
    Pending,
}

/// What is known about rows still to come.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    /// The input has ended (drain): no more rows.
    pub ended: bool,
    /// Rows still to come have an event time at or after this (µs).
    pub watermark: Option<i64>,
    /// WITHIN, µs (exclusive, from the first row of the match).
    pub within: Option<i64>,
}

impl Program {
    /// Finds the preferred match starting at `times[0]`'s row. `define(var, classes)` tests
    /// the row `classes.len() - 1` for `var` (the classes of the rows before it, and the
    /// tentative `var` for it, are in `classes`).
    pub fn run(
        &self,
        times: &[i64],
        horizon: Horizon,
        define: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Outcome {
        let Some(&first) = times.first() else {
            return Outcome::Pending;
        };
        let mut classes: Vec<u8> = Vec::new();
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let mut pc = 0;
        loop {
            let failed = match self.insts[pc] {
                Inst::Match => {
                    if classes.is_empty() {
                        true
                    } else {
                        return Outcome::Match(classes);
                    }
                }
                Inst::Jmp(t) => {
                    pc = t;
                    false
                }
                Inst::Split(a, b) => {
                    stack.push((b, classes.len()));
                    pc = a;
                    false
                }
                Inst::Var(v) => {
                    let pos = classes.len();
                    if pos < times.len() {
                        let fits = horizon.within.is_none_or(|w| times[pos] - first < w);
                        classes.push(v);
                        if fits && define(&classes) {
                            pc += 1;
                            false
                        } else {
                            classes.pop();
                            true
                        }
                    } else {
                        let expired = match (horizon.within, horizon.watermark) {
                            (Some(w), Some(mark)) => mark - first >= w,
                            _ => false,
                        };
                        if horizon.ended || expired {
                            true
                        } else {
                            return Outcome::Pending;
                        }
                    }
                }
            };
            if failed {
                match stack.pop() {
                    Some((next, len)) => {
                        classes.truncate(len);
                        pc = next;
                    }
                    None => return Outcome::NoMatch,
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    /// The PATTERN of a whole MATCH_RECOGNIZE query, as sqlparser reads it.
    fn parse(pattern: &str) -> MatchRecognizePattern {
        let sql = format!(
            "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN ({pattern}) DEFINE A AS true)"
        );
        let stmt = Parser::parse_sql(&GenericDialect {}, &sql)
            .unwrap()
            .remove(0);
        let sqlparser::ast::Statement::Query(q) = stmt else {
            panic!()
        };
        let sqlparser::ast::SetExpr::Select(s) = *q.body else {
            panic!()
        };
        let sqlparser::ast::TableFactor::MatchRecognize { pattern, .. } = &s.from[0].relation
        else {
            panic!()
        };
        pattern.clone()
    }

    fn program(pattern: &str) -> Program {
        Program::compile(&parse(pattern)).unwrap()
    }

    /// Runs over rows given as the set of variables each row satisfies.
    fn run(p: &Program, rows: &[&str], ended: bool) -> Outcome {
        let times: Vec<i64> = (0..rows.len() as i64).collect();
        let horizon = Horizon {
            ended,
            watermark: None,
            within: None,
        };
        let names: Vec<char> = p.vars.iter().map(|v| v.chars().next().unwrap()).collect();
        p.run(&times, horizon, &mut |classes: &[u8]| {
            let i = classes.len() - 1;
            rows[i].contains(names[classes[i] as usize])
        })
    }

    #[test]
    fn greedy_reluctant_and_alternation_prefer_as_sql_says() {
        let greedy = program("A+ B");
        // rows satisfying both: greedy A takes as many as it can.
        assert_eq!(
            run(&greedy, &["A", "AB", "AB", "B"], true),
            Outcome::Match(vec![0, 0, 0, 1])
        );
        let reluctant = program("A+? B");
        assert_eq!(
            run(&reluctant, &["A", "AB", "AB", "B"], true),
            Outcome::Match(vec![0, 1])
        );
        let alt = program("(A | B) C");
        assert_eq!(run(&alt, &["AB", "C"], true), Outcome::Match(vec![0, 2]));
        let exact = program("A{2}");
        assert_eq!(
            run(&exact, &["A", "A", "A"], true),
            Outcome::Match(vec![0, 0])
        );
        assert_eq!(run(&exact, &["A", "B"], true), Outcome::NoMatch);
    }

    #[test]
    fn a_greedy_tail_waits_for_the_next_row_unless_the_input_ended() {
        let p = program("A B+");
        assert_eq!(run(&p, &["A", "B"], false), Outcome::Pending);
        assert_eq!(run(&p, &["A", "B"], true), Outcome::Match(vec![0, 1]));
        assert_eq!(run(&p, &["A", "B", "A"], false), Outcome::Match(vec![0, 1]));
        assert_eq!(run(&p, &["B"], false), Outcome::NoMatch);
    }

    #[test]
    fn patterns_that_match_nothing_are_refused() {
        let err = Program::compile(&parse("A*")).unwrap_err();
        assert!(err.contains("zero rows"), "{err}");
        assert!(Program::compile(&parse("(A?)+ B")).is_err());
    }
}
