//! The `.ftl` files against each other and against the code: every language has exactly the
//! same messages, each message uses the same placeables in every language, every key the code
//! asks for (`t!`, `msg!`) exists with exactly the placeables the code passes, and no message
//! is left that the code never asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluent_syntax::ast::{Entry, Expression, InlineExpression, Pattern, PatternElement};

type Vars = BTreeSet<String>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn inline_vars(e: &InlineExpression<&str>, out: &mut Vars) {
    match e {
        InlineExpression::VariableReference { id } => {
            out.insert(id.name.to_owned());
        }
        InlineExpression::FunctionReference { arguments, .. } => {
            for a in &arguments.positional {
                inline_vars(a, out);
            }
            for a in &arguments.named {
                inline_vars(&a.value, out);
            }
        }
        InlineExpression::TermReference {
            arguments: Some(arguments),
            ..
        } => {
            for a in &arguments.positional {
                inline_vars(a, out);
            }
            for a in &arguments.named {
                inline_vars(&a.value, out);
            }
        }
        InlineExpression::Placeable { expression } => expression_vars(expression, out),
        _ => {}
    }
}

fn expression_vars(e: &Expression<&str>, out: &mut Vars) {
    match e {
        Expression::Inline(i) => inline_vars(i, out),
        Expression::Select { selector, variants } => {
            inline_vars(selector, out);
            for v in variants {
                pattern_vars(&v.value, out);
            }
        }
    }
}

fn pattern_vars(p: &Pattern<&str>, out: &mut Vars) {
    for el in &p.elements {
        if let PatternElement::Placeable { expression } = el {
            expression_vars(expression, out);
        }
    }
}

/// Every message of one language (all its `.ftl` files) with the variables it uses.
fn language(dir: &Path) -> BTreeMap<String, Vars> {
    let mut out = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ftl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .ftl files in {}", dir.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let res = fluent_syntax::parser::parse(text.as_str())
            .unwrap_or_else(|(_, errs)| panic!("{}: {errs:?}", f.display()));
        for entry in &res.body {
            match entry {
                Entry::Message(m) => {
                    let mut vars = Vars::new();
                    if let Some(p) = &m.value {
                        pattern_vars(p, &mut vars);
                    }
                    let key = m.id.name.to_owned();
                    assert!(
                        out.insert(key.clone(), vars).is_none(),
                        "{}: {key} twice",
                        f.display()
                    );
                }
                Entry::Junk { content } => panic!("{}: unparsed: {content}", f.display()),
                _ => {}
            }
        }
    }
    out
}

/// The text of a macro call starting at `open` (just after `(`), up to its closing paren.
fn call_text(src: &str, open: usize) -> &str {
    let mut depth = 1;
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in src[open..].char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &src[open..open + i];
                }
            }
            _ => {}
        }
        prev = c;
    }
    panic!("unclosed macro call at byte {open}");
}

/// Splits at commas outside brackets and strings.
fn top_level_args(call: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut start, mut prev) = (0, false, 0, ' ');
    for (i, c) in call.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(call[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    let last = call[start..].trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// Every `.rs` file under `src/`: (path, text).
fn sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&p).unwrap();
                out.push((p, src));
            }
        }
    }
    out
}

/// Every `t!(lang, "key", a = …)` and `msg!("key", a = …)` in `src/`: key → argument names
/// (one entry per call).
fn code_calls() -> Vec<(String, String, Vars)> {
    let mut calls = Vec::new();
    for (p, src) in sources() {
        for (mac, key_at) in [("t!(", 1), ("msg!(", 0)] {
            let mut from = 0;
            while let Some(at) = src[from..].find(mac) {
                let start = from + at;
                from = start + mac.len();
                // `format!(`, `assert!(`: a word boundary is required before the name.
                let before = src[..start].chars().next_back().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' {
                    continue;
                }
                let line = &src[src[..start].rfind('\n').map_or(0, |i| i + 1)..start];
                if line.trim_start().starts_with("//") {
                    continue; // an example in a doc comment
                }
                let args = top_level_args(call_text(&src, from));
                let Some(key) = args.get(key_at) else {
                    continue;
                };
                let Some(key) = key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) else {
                    continue; // `$key:literal` in the macro's own definition
                };
                let names: Vars = args[key_at + 1..]
                    .iter()
                    .map(|a| a.split('=').next().unwrap_or("").trim().to_owned())
                    .collect();
                calls.push((p.display().to_string(), key.to_owned(), names));
            }
        }
    }
    calls
}

#[test]
fn every_language_has_every_message_with_the_same_placeables() {
    let locales = root().join("locales");
    let en = language(&locales.join("en"));
    let ru = language(&locales.join("ru"));
    let only_en: Vec<&String> = en.keys().filter(|k| !ru.contains_key(*k)).collect();
    let only_ru: Vec<&String> = ru.keys().filter(|k| !en.contains_key(*k)).collect();
    assert!(only_en.is_empty(), "missing in ru: {only_en:?}");
    assert!(only_ru.is_empty(), "missing in en: {only_ru:?}");
    for (key, vars) in &en {
        assert_eq!(vars, &ru[key], "placeables of {key}: en vs ru");
    }
    assert!(en.len() > 150, "{} messages", en.len());
}

#[test]
fn every_key_the_code_asks_for_exists_with_the_placeables_it_passes_and_none_is_unused() {
    let en = language(&root().join("locales").join("en"));
    let calls = code_calls();
    assert!(calls.len() > 150, "found only {} calls", calls.len());
    for (file, key, names) in &calls {
        let vars = en
            .get(key)
            .unwrap_or_else(|| panic!("{file}: `{key}` is in no .ftl file"));
        assert_eq!(names, vars, "{file}: `{key}` gets {names:?}, uses {vars:?}");
    }
    // Keys not asked for by a macro must still appear in the code as a literal (usage lines,
    // ages, the usage wrapper), or they are dead.
    let code: String = sources().into_iter().map(|(_, src)| src).collect();
    let asked: BTreeSet<&str> = calls.iter().map(|(_, k, _)| k.as_str()).collect();
    let unused: Vec<&String> = en
        .keys()
        .filter(|k| !asked.contains(k.as_str()) && !code.contains(&format!("\"{k}\"")))
        .collect();
    assert!(unused.is_empty(), "messages no code uses: {unused:?}");
}
