//! No module cycles in `src/`: no two files import each other, directly or round a loop.
//!
//! The test reads every `src/**/*.rs` reached from `src/lib.rs` (and `src/main.rs`) through `mod`
//! declarations, builds the graph of which file uses which, and fails listing every strongly
//! connected component of more than one file, with the imports that close it.
//!
//! The rules, as this scanner applies them:
//! - **An import is a path into the crate**: a `use` tree (grouped `use a::{b, c::d}` included) or
//!   a path in code (`crate::x::f()`, `super::y::Z`, `$crate::…`, a path through an imported
//!   module or a child module, `gdap_operator::…` in `main.rs`), in any item or function body.
//!   Comments, doc links and string literals are not imports.
//! - **A path names a file**: the longest prefix of the path that is a module with its own file
//!   (`foo.rs` or `foo/mod.rs`); the rest names an item in it (or an inline module, which lives
//!   in the same file). When that file only passes the item on (`use`/`pub use` of it), the path
//!   follows the import through to the file that defines the item.
//! - **Declaring `mod child;` is not an import**, and a `pub use` that is only a re-export (the
//!   name is not used in the re-exporting file itself) is not an edge from that file: importers
//!   resolve through it instead.
//! - **Test code is left out**: every item under `#[cfg(test)]` (or `#[cfg(all(test, …))]`),
//!   inline `mod tests { … }` and test module files such as `foo_tests.rs` (declared from `foo.rs`
//!   or its `mod.rs` under such a `cfg`, with or without `#[path]`). A test module sits inside the
//!   module it tests and reaches into it through `super::` by design; it is compiled only into the
//!   test binary, and nothing in the product can import it, so it cannot close a cycle of the
//!   product's modules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(&'static str),
    Str(String),
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }
    fn is(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(q) if *q == p)
    }
    fn is_ident(&self, s: &str) -> bool {
        self.ident() == Some(s)
    }
}

/// Rust source as tokens: identifiers, the punctuation that paths and items are made of, string
/// literals (for `#[path = "…"]`); comments dropped, other literals as `Other`.
fn tokenize(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let ident_start = |ch: char| ch.is_alphabetic() || ch == '_';
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if (ch == 'r' || ch == 'b')
            && raw_string_start(&c, i).is_some()
            && !(i > 0 && ident_char(c[i - 1]))
        {
            let (hashes, body) = raw_string_start(&c, i).unwrap();
            i = body;
            let mut s = String::new();
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '"' && (0..hashes).all(|k| c.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                s.push(c[i]);
                i += 1;
            }
            out.push(Token {
                tok: Tok::Str(s),
                line: start_line,
            });
        } else if ch == '"' || (ch == 'b' && c.get(i + 1) == Some(&'"')) {
            i += if ch == 'b' { 2 } else { 1 };
            let mut s = String::new();
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if c.get(i) == Some(&'\n') {
                    line += 1;
                }
                if let Some(&x) = c.get(i) {
                    s.push(x);
                }
                i += 1;
            }
            i += 1;
            out.push(Token {
                tok: Tok::Str(s),
                line: start_line,
            });
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a, 'static).
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(Token {
                    tok: Tok::Other,
                    line,
                });
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push(Token {
                    tok: Tok::Other,
                    line,
                });
            } else {
                i += 1;
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Other,
                    line,
                });
            }
        } else if ident_start(ch) {
            let s0 = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            let mut s: String = c[s0..i].iter().collect();
            if s == "r" && c.get(i) == Some(&'#') {
                // A raw identifier (r#type).
                let s1 = i + 1;
                i = s1;
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
                s = c[s1..i].iter().collect();
            }
            out.push(Token {
                tok: Tok::Ident(s),
                line,
            });
        } else if ch.is_ascii_digit() {
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Other,
                line,
            });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            i += 2;
            out.push(Token {
                tok: Tok::Punct("::"),
                line,
            });
        } else {
            i += 1;
            let p = match ch {
                '{' => "{",
                '}' => "}",
                '(' => "(",
                ')' => ")",
                '[' => "[",
                ']' => "]",
                ';' => ";",
                ',' => ",",
                '*' => "*",
                '#' => "#",
                '=' => "=",
                '!' => "!",
                '$' => "$",
                '<' => "<",
                '>' => ">",
                _ => "",
            };
            out.push(Token {
                tok: if p.is_empty() {
                    Tok::Other
                } else {
                    Tok::Punct(p)
                },
                line,
            });
        }
    }
    out
}

/// At `i`, the start of a raw string (`r"`, `r#"`, `br#"`…): the number of `#` and where its
/// text begins.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// The index just past the bracket group opening at `i` (`(`, `[` or `{`).
fn group_end(t: &[Token], i: usize) -> usize {
    let mut depth = 0i32;
    let mut j = i;
    while j < t.len() {
        if t[j].is("(") || t[j].is("[") || t[j].is("{") {
            depth += 1;
        } else if t[j].is(")") || t[j].is("]") || t[j].is("}") {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
        j += 1;
    }
    t.len()
}

/// Whether the attribute `#[…]` spanning `t[i..end]` is a `cfg` that holds only under test.
fn is_test_cfg(attr: &[Token]) -> bool {
    attr.get(2).is_some_and(|t| t.is_ident("cfg"))
        && attr.iter().any(|t| t.is_ident("test"))
        && !attr.iter().any(|t| t.is_ident("not") || t.is_ident("any"))
}

/// The index just past the item starting at `i` (after its attributes).
fn item_end(t: &[Token], i: usize) -> usize {
    let semicolon_items = ["use", "const", "static", "type", "let"];
    let ends_with_semicolon = t[i..]
        .iter()
        .find_map(|x| x.ident().filter(|s| *s != "pub" && *s != "crate"))
        .is_some_and(|s| semicolon_items.contains(&s));
    let mut j = i;
    while j < t.len() {
        if t[j].is(";") {
            return j + 1;
        }
        if t[j].is("(") || t[j].is("[") || t[j].is("{") {
            let opens_body = t[j].is("{");
            j = group_end(t, j);
            if opens_body && !ends_with_semicolon {
                return j;
            }
            continue;
        }
        j += 1;
    }
    t.len()
}

/// A module with a file: its path from the crate root and what the file holds.
struct ModFile {
    path: PathBuf,
    module: Vec<String>,
    /// The file's tokens without test-only items.
    tokens: Vec<Token>,
}

/// Reads `file` (module `module`), drops its test-only items and follows its `mod x;`
/// declarations. Test module files land in `tests`.
fn load(
    file: &Path,
    module: Vec<String>,
    is_mod_rs: bool,
    files: &mut Vec<ModFile>,
    tests: &mut BTreeSet<PathBuf>,
) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let raw = tokenize(&text);
    let dir = file.parent().unwrap().to_path_buf();
    let child_dir = if is_mod_rs {
        dir.clone()
    } else {
        dir.join(file.file_stem().unwrap())
    };
    let mut tokens = Vec::new();
    let mut declared = Vec::new();
    let mut i = 0;
    let mut inline_depth = 0;
    let mut depth_stack: Vec<i32> = Vec::new();
    let mut depth = 0i32;
    while i < raw.len() {
        // Attributes of the next item.
        if raw[i].is("#") && raw.get(i + 1).is_some_and(|t| t.is("[")) {
            let mut j = i;
            let mut test_only = false;
            let mut path_attr = None;
            while j < raw.len() && raw[j].is("#") && raw.get(j + 1).is_some_and(|t| t.is("[")) {
                let end = group_end(&raw, j + 1);
                let attr = &raw[j..end];
                test_only |= is_test_cfg(attr);
                if attr.get(2).is_some_and(|t| t.is_ident("path")) {
                    path_attr = attr.iter().find_map(|t| match &t.tok {
                        Tok::Str(s) => Some(s.clone()),
                        _ => None,
                    });
                }
                j = end;
            }
            if test_only {
                let end = item_end(&raw, j);
                if let Some(name) = mod_decl(&raw[j..end]) {
                    let child = match &path_attr {
                        Some(p) => dir.join(p),
                        None => child_file(&child_dir, &name),
                    };
                    tests.insert(child);
                }
                i = end;
                continue;
            }
            if let Some(p) = path_attr {
                declared.push((j, Some(p)));
            }
            // Other attributes stay: a path in one (`value_parser = crate::x::f`) is an import.
            tokens.extend(raw[i..j].iter().cloned());
            i = j;
            continue;
        }
        let t = &raw[i];
        if t.is_ident("mod")
            && inline_depth == 0
            && let Some(name) = raw.get(i + 1).and_then(|t| t.ident())
            && raw.get(i + 2).is_some_and(|next| next.is(";"))
        {
            let path_attr = declared
                .iter()
                .rev()
                .find(|(at, _)| *at + 4 >= i)
                .and_then(|(_, p)| p.clone());
            let file = match path_attr {
                Some(p) => dir.join(p),
                None => child_file(&child_dir, name),
            };
            let mut m = module.clone();
            m.push(name.to_string());
            let mod_rs = file.file_name().unwrap() == "mod.rs";
            load(&file, m, mod_rs, files, tests);
            i += 3;
            continue;
        }
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth -= 1;
            if depth_stack.last() == Some(&depth) {
                depth_stack.pop();
                inline_depth -= 1;
            }
        }
        if t.is_ident("mod") && raw.get(i + 2).is_some_and(|t| t.is("{")) {
            depth_stack.push(depth);
            inline_depth += 1;
        }
        tokens.push(t.clone());
        i += 1;
    }
    files.push(ModFile {
        path: file.to_path_buf(),
        module,
        tokens,
    });
}

/// `mod name;` or `mod name { … }` among an item's tokens: its name.
fn mod_decl(item: &[Token]) -> Option<String> {
    let at = item.iter().position(|t| t.is_ident("mod"))?;
    item.get(at + 1)?.ident().map(str::to_string)
}

fn child_file(dir: &Path, name: &str) -> PathBuf {
    let flat = dir.join(format!("{name}.rs"));
    if flat.exists() {
        flat
    } else {
        dir.join(name).join("mod.rs")
    }
}

/// One `use` import: the absolute path it names, the name it binds (none for a glob), whether
/// it is `pub`, and its line.
#[derive(Debug, Clone)]
struct Import {
    path: Vec<String>,
    name: Option<String>,
    public: bool,
    line: usize,
}

/// A path in code (outside `use`), as written: its segments and line.
struct CodePath {
    /// The module the path is written in (inline modules included).
    scope: Vec<String>,
    segments: Vec<String>,
    line: usize,
}

/// What a file imports and refers to.
struct Scan {
    imports: Vec<(Vec<String>, Import)>,
    code_paths: Vec<CodePath>,
    /// How often each identifier occurs outside `use` declarations.
    idents: HashMap<String, usize>,
    /// Items the file defines (names).
    defines: BTreeSet<String>,
}

fn scan(file: &ModFile) -> Scan {
    let t = &file.tokens;
    let mut imports = Vec::new();
    let mut code_paths = Vec::new();
    let mut idents: HashMap<String, usize> = HashMap::new();
    let mut defines = BTreeSet::new();
    let mut scope = file.module.clone();
    let mut scope_depths: Vec<i32> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < t.len() {
        if t[i].is("{") {
            depth += 1;
        } else if t[i].is("}") {
            depth -= 1;
            if scope_depths.last() == Some(&depth) {
                scope_depths.pop();
                scope.pop();
            }
        }
        if let Some(kw) = t[i].ident() {
            let kinds = [
                "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "union",
            ];
            if kinds.contains(&kw)
                && let Some(name) = t.get(i + 1).and_then(|x| x.ident())
            {
                defines.insert(name.to_string());
            }
            if kw == "macro_rules"
                && let Some(name) = t.get(i + 2).and_then(|x| x.ident())
            {
                defines.insert(name.to_string());
            }
            if kw == "mod" && t.get(i + 2).is_some_and(|x| x.is("{")) {
                scope.push(t[i + 1].ident().unwrap().to_string());
                scope_depths.push(depth);
                i += 2;
                continue;
            }
        }
        if t[i].is_ident("use") {
            let public = i > 0
                && (t[i - 1].is_ident("pub")
                    || (t[i - 1].is(")")
                        && t[..i]
                            .iter()
                            .rev()
                            .nth(3)
                            .is_some_and(|x| x.is_ident("pub"))));
            let mut j = i + 1;
            let mut out = Vec::new();
            use_tree(t, &mut j, Vec::new(), public, &mut out);
            for import in out {
                imports.push((scope.clone(), import));
            }
            while j < t.len() && !t[j].is(";") {
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if let Some(first) = t[i].ident() {
            *idents.entry(first.to_string()).or_default() += 1;
            // `pub(in crate::x)` is a visibility, not an import.
            let continuation = i > 0 && (t[i - 1].is("::") || t[i - 1].is_ident("in"));
            if !continuation && t.get(i + 1).is_some_and(|x| x.is("::")) {
                let mut segments = vec![first.to_string()];
                let mut j = i + 1;
                while t.get(j).is_some_and(|x| x.is("::")) {
                    match t.get(j + 1).and_then(|x| x.ident()) {
                        Some(s) => segments.push(s.to_string()),
                        None => break,
                    }
                    j += 2;
                }
                code_paths.push(CodePath {
                    scope: scope.clone(),
                    segments,
                    line: t[i].line,
                });
            }
        }
        i += 1;
    }
    Scan {
        imports,
        code_paths,
        idents,
        defines,
    }
}

/// Parses a use tree at `t[*j]` with `prefix` already read.
fn use_tree(t: &[Token], j: &mut usize, prefix: Vec<String>, public: bool, out: &mut Vec<Import>) {
    let mut path = prefix;
    if t.get(*j).is_some_and(|x| x.is("::")) {
        // `use ::x` names an external crate.
        path.push("::".into());
        *j += 1;
    }
    loop {
        let Some(tok) = t.get(*j) else { return };
        if tok.is("*") {
            *j += 1;
            out.push(Import {
                path,
                name: None,
                public,
                line: tok.line,
            });
            return;
        }
        if tok.is("{") {
            *j += 1;
            while t.get(*j).is_some_and(|x| !x.is("}")) {
                use_tree(t, j, path.clone(), public, out);
                if t.get(*j).is_some_and(|x| x.is(",")) {
                    *j += 1;
                }
            }
            *j += 1;
            return;
        }
        let line = tok.line;
        let Some(name) = tok.ident().map(str::to_string) else {
            return;
        };
        *j += 1;
        if t.get(*j).is_some_and(|x| x.is("::")) {
            path.push(name);
            *j += 1;
            continue;
        }
        let mut bound = if name == "self" {
            path.last().cloned().unwrap_or_default()
        } else {
            name.clone()
        };
        if name != "self" {
            path.push(name);
        }
        if t.get(*j).is_some_and(|x| x.is_ident("as")) {
            bound = t
                .get(*j + 1)
                .and_then(|x| x.ident())
                .unwrap_or("_")
                .to_string();
            *j += 2;
        }
        out.push(Import {
            path,
            name: Some(bound),
            public,
            line,
        });
        return;
    }
}

/// The crate as files, scans and the module → file map.
struct Crate {
    files: Vec<ModFile>,
    scans: Vec<Scan>,
    by_module: HashMap<Vec<String>, usize>,
}

impl Crate {
    /// `segments` as written in module `scope` of file `from`, made absolute; `None` when it names
    /// something outside the crate.
    fn absolute(&self, from: usize, scope: &[String], segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?.as_str();
        let mut base: Vec<String>;
        let mut rest = segments;
        match first {
            "crate" => {
                base = vec![];
                rest = &segments[1..];
            }
            "gdap_operator" if self.files[from].path.ends_with("src/main.rs") => {
                base = vec![];
                rest = &segments[1..];
            }
            "self" => {
                base = scope.to_vec();
                rest = &segments[1..];
            }
            "super" => {
                base = scope.to_vec();
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                if rest.first().is_some_and(|s| s == "self") {
                    rest = &rest[1..];
                }
            }
            name => {
                // A child module of this one, or a name imported into this scope.
                let mut own = scope.to_vec();
                own.push(name.to_string());
                if self.by_module.contains_key(&own) && scope == self.files[from].module {
                    base = scope.to_vec();
                } else if let Some((_, import)) = self.scans[from].imports.iter().find(|(s, i)| {
                    s == scope
                        && i.name.as_deref() == Some(name)
                        && i.path.first().is_some_and(|f| f != name)
                }) {
                    let target = self.absolute(from, scope, &import.path)?;
                    let mut path = target;
                    path.extend(rest[1..].iter().cloned());
                    return Some(path);
                } else {
                    return None;
                }
            }
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what the absolute `path` names, following imports in the file its
    /// module prefix names.
    fn resolve(&self, path: &[String], seen: &mut BTreeSet<Vec<String>>) -> Option<usize> {
        if !seen.insert(path.to_vec()) {
            return None;
        }
        let (file, n) = (0..=path.len())
            .rev()
            .find_map(|n| self.by_module.get(&path[..n]).map(|f| (*f, n)))?;
        let Some(item) = path.get(n) else {
            return Some(file);
        };
        let scan = &self.scans[file];
        let module = &self.files[file].module;
        if !scan.defines.contains(item) {
            // Passed on through an import of this file.
            for (scope, import) in &scan.imports {
                if scope != module {
                    continue;
                }
                let through = match &import.name {
                    Some(name) if name == item => Some(path[n + 1..].to_vec()),
                    None => Some(path[n..].to_vec()),
                    _ => None,
                };
                let Some(tail) = through else { continue };
                let Some(mut target) = self.absolute(file, scope, &import.path) else {
                    continue;
                };
                target.extend(tail);
                if let Some(f) = self.resolve(&target, seen)
                    && (import.name.is_some() || self.scans[f].defines.contains(item))
                {
                    return Some(f);
                }
            }
        }
        Some(file)
    }

    fn target(&self, from: usize, scope: &[String], segments: &[String]) -> Option<usize> {
        let path = self.absolute(from, scope, segments)?;
        self.resolve(&path, &mut BTreeSet::new())
    }
}

fn load_crate(src: &Path) -> Crate {
    let mut files = Vec::new();
    let mut tests = BTreeSet::new();
    load(&src.join("lib.rs"), vec![], true, &mut files, &mut tests);
    load(
        &src.join("main.rs"),
        vec!["<main>".into()],
        true,
        &mut files,
        &mut tests,
    );
    let mut all = Vec::new();
    walk(src, &mut all);
    let reached: BTreeSet<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let unreached: Vec<_> = all
        .iter()
        .filter(|p| !reached.contains(*p) && !tests.contains(*p))
        .collect();
    assert!(
        unreached.is_empty(),
        "files under src/ that no `mod` declaration reaches (the scanner misread one?): {unreached:?}"
    );
    let by_module = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.module.clone(), i))
        .collect();
    let scans = files.iter().map(scan).collect();
    Crate {
        files,
        scans,
        by_module,
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// An edge: from → to, with the line and path that make it.
type Edges = BTreeMap<(usize, usize), (usize, String)>;

fn edges(krate: &Crate) -> Edges {
    let mut edges = Edges::new();
    let mut add = |from: usize, to: Option<usize>, line: usize, what: String| {
        if let Some(to) = to.filter(|to| *to != from) {
            edges.entry((from, to)).or_insert((line, what));
        }
    };
    for (from, scan) in krate.scans.iter().enumerate() {
        for (scope, import) in &scan.imports {
            let re_export_only = import.public
                && import
                    .name
                    .as_ref()
                    .is_none_or(|n| !scan.idents.contains_key(n));
            if re_export_only {
                continue;
            }
            let to = krate.target(from, scope, &import.path);
            add(
                from,
                to,
                import.line,
                format!("use {}", import.path.join("::")),
            );
        }
        for path in &scan.code_paths {
            let to = krate.target(from, &path.scope, &path.segments);
            add(from, to, path.line, path.segments.join("::"));
        }
    }
    edges
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles(n: usize, edges: &Edges) -> Vec<Vec<usize>> {
    struct State<'a> {
        next: Vec<Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        out: &'a mut Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.counter);
        s.low[v] = s.counter;
        s.counter += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for w in s.next[v].clone() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut next = vec![Vec::new(); n];
    for (from, to) in edges.keys() {
        next[*from].push(*to);
    }
    let mut out = Vec::new();
    let mut state = State {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        out: &mut out,
    };
    for v in 0..n {
        if state.index[v].is_none() {
            visit(&mut state, v);
        }
    }
    out
}

fn name(krate: &Crate, file: usize) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = &krate.files[file].path;
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn describe(krate: &Crate, component: &[usize], edges: &Edges) -> String {
    let names: Vec<String> = component.iter().map(|f| name(krate, *f)).collect();
    let mut text = format!("cycle of {} files: {}\n", names.len(), names.join(", "));
    for ((from, to), (line, what)) in edges {
        if component.contains(from) && component.contains(to) {
            text.push_str(&format!(
                "  {}:{line} → {}  ({what})\n",
                name(krate, *from),
                name(krate, *to)
            ));
        }
    }
    text
}

#[test]
fn no_module_cycles_in_src() {
    let krate = load_crate(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"));
    let edges = edges(&krate);
    let found = cycles(krate.files.len(), &edges);
    let new: String = found
        .iter()
        .map(|component| describe(&krate, component, &edges))
        .collect();
    assert!(
        new.is_empty(),
        "module cycles in src/ (a file imports a file that imports it back, directly or round a \
         loop); move what both need into a module both can depend on:\n{new}"
    );
}

/// The scanner itself, on a small crate: it finds the imports it must find, and only those.
#[test]
fn the_scanner_sees_imports_in_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files: &[(&str, &str)] = &[
        (
            "lib.rs",
            "pub mod a; pub mod b; pub mod c; pub mod d; pub mod e; pub mod f; pub mod g;",
        ),
        ("main.rs", "fn main() { gdap_operator::a::run(); }"),
        // A grouped use with `self`, and a path through the imported module in a body.
        (
            "a.rs",
            "use crate::{b::{self}, c::C as Renamed};\n\
             pub fn run() { let _ = Renamed; b::helper(); }",
        ),
        // Test code is left out: an inline test module and a test file under `#[path]`.
        (
            "b.rs",
            "pub fn helper() {}\n\
             #[cfg(test)] mod tests { use crate::a::run; }\n\
             #[cfg(all(test, feature = \"x\"))] #[path = \"b_tests.rs\"] mod more;",
        ),
        ("b_tests.rs", "use crate::a::run;"),
        // Comments, strings and `pub(in …)` are not imports; `super` in an inline module is the file.
        (
            "c.rs",
            "// crate::a::run\n/// [`crate::a::run`]\npub struct C;\n\
             const S: &str = \"crate::a::run\";\n\
             pub(in crate::c) fn hidden() {}\n\
             pub mod inner { use super::C; pub fn f() -> C { C } }",
        ),
        // A re-export in mod.rs resolves through to the file that defines the item.
        ("d/mod.rs", "mod item;\npub use item::Item;"),
        ("d/item.rs", "pub struct Item;"),
        ("e.rs", "use crate::d::Item;\npub fn e(_: Item) {}"),
        // A cycle round two files, one side only in a function body.
        ("f.rs", "use crate::g::G;\npub struct F(pub G);"),
        (
            "g.rs",
            "pub struct G;\npub fn g() { let _ = crate::f::F(G); }",
        ),
    ];
    for (path, text) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let krate = load_crate(&src);
    let edges = edges(&krate);
    let file = |p: &str| {
        krate
            .files
            .iter()
            .position(|f| f.path.ends_with(p))
            .unwrap_or_else(|| panic!("{p} not loaded"))
    };
    let all: BTreeSet<(String, String)> = edges
        .keys()
        .map(|(from, to)| {
            let rel = |f: usize| {
                krate.files[f]
                    .path
                    .strip_prefix(&src)
                    .unwrap()
                    .display()
                    .to_string()
            };
            (rel(*from), rel(*to))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("main.rs", "a.rs"),
        ("a.rs", "b.rs"),
        ("a.rs", "c.rs"),
        ("e.rs", "d/item.rs"),
        ("f.rs", "g.rs"),
        ("g.rs", "f.rs"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(all, expected);
    assert!(!krate.files.iter().any(|f| f.path.ends_with("b_tests.rs")));
    let found = cycles(krate.files.len(), &edges);
    assert_eq!(found, vec![vec![file("f.rs"), file("g.rs")]]);
}
