//! `.dockerignore` as the Docker CLI reads it: one pattern a line, `#` comments, `!` to take
//! an exclusion back, `*` and `?` within a path segment, `**` across segments, `[…]` classes;
//! the last pattern that matches a path, or one of its parent directories, decides.

pub struct Ignore {
    patterns: Vec<(bool, String)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (negated, p) = match l.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, l),
                };
                (negated, clean(p))
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        Ignore { patterns }
    }

    /// Whether `path` (relative to the context, `/`-separated) stays out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut out = false;
        for (negated, p) in &self.patterns {
            let hit = matches(p.as_bytes(), path.as_bytes())
                || ancestors(path).any(|a| matches(p.as_bytes(), a.as_bytes()));
            if hit {
                out = !negated;
            }
        }
        out
    }

    /// Whether some pattern takes an exclusion back, so an excluded directory must still be
    /// looked into.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(n, _)| *n)
    }
}

/// `./a//b/` → `a/b`; a leading `/` means the context's root.
fn clean(p: &str) -> String {
    p.split('/').filter(|s| !s.is_empty() && *s != ".").collect::<Vec<_>>().join("/")
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

fn matches(p: &[u8], s: &[u8]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    if p.starts_with(b"**") {
        let rest = &p[2..];
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        if rest.is_empty() {
            return true;
        }
        return (0..=s.len()).any(|i| (i == 0 || s[i - 1] == b'/') && matches(rest, &s[i..]));
    }
    match p[0] {
        b'*' => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| matches(&p[1..], &s[i..])),
        b'?' => !s.is_empty() && s[0] != b'/' && matches(&p[1..], &s[1..]),
        b'[' => match class(&p[1..], s.first().copied()) {
            Some((true, used)) => matches(&p[1 + used..], &s[1..]),
            _ => false,
        },
        b'\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && matches(&p[2..], &s[1..]),
        c => !s.is_empty() && s[0] == c && matches(&p[1..], &s[1..]),
    }
}

/// Matches one character against `[…]` (given after the `[`): whether it matched, and how
/// many pattern bytes the class took, `]` included.
fn class(p: &[u8], c: Option<u8>) -> Option<(bool, usize)> {
    let c = c.filter(|c| *c != b'/')?;
    let (negate, mut i) = match p.first() {
        Some(b'^') | Some(b'!') => (true, 1),
        _ => (false, 0),
    };
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            hit |= (p[i]..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ignore_semantics() {
        let i = Ignore::parse(
            "# comment\n*.log\nsecrets/\n/build\n**/node_modules\ndocs/*.md\n!docs/README.md\ntmp?\n[ab].txt\n",
        );
        assert!(i.excludes("app.log"));
        assert!(!i.excludes("logs/app.log"), "* does not cross directories");
        assert!(i.excludes("secrets/key.pem"), "a directory takes what is under it");
        assert!(i.excludes("build/out/x"));
        assert!(!i.excludes("src/build"), "/build is the root's only");
        assert!(i.excludes("web/node_modules/react/index.js"));
        assert!(i.excludes("node_modules/x"), "** matches no directory too");
        assert!(i.excludes("docs/guide.md"));
        assert!(!i.excludes("docs/README.md"), "! takes it back");
        assert!(i.excludes("tmp1") && !i.excludes("tmp12"));
        assert!(i.excludes("a.txt") && !i.excludes("c.txt"));
        assert!(!i.excludes("src/main.rs"));
        assert!(i.has_exceptions());
        assert!(!Ignore::parse("*.log").has_exceptions());
    }
}
