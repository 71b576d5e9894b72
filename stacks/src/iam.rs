//! IAM's wildcard matching, as policies and `ArnLike` conditions use it: `*` stands for any
//! run of characters (none too), `?` for one, everything else for itself. Written here, in a
//! dozen lines, because the diff (what a policy change widens) and the pipelines (who may
//! approve) must match exactly as IAM does, with no path, brace or class syntax a glob crate
//! would add.

/// `*` any run of characters, `?` one character, everything else literally. Linear in most
/// cases; at worst the product of the two lengths.
pub fn glob(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        glob_in(pattern.as_bytes(), text.as_bytes(), b'*', b'?', |a, b| {
            a == b
        })
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_in(&p, &t, '*', '?', |a, b| a == b)
    }
}

/// [`glob`] with ASCII letters matched without regard to case, as IAM matches action names.
pub fn glob_ignoring_case(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        glob_in(pattern.as_bytes(), text.as_bytes(), b'*', b'?', |a, b| {
            a.eq_ignore_ascii_case(&b)
        })
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_in(&p, &t, '*', '?', |a, b| a.eq_ignore_ascii_case(&b))
    }
}

fn glob_in<T: PartialEq + Copy>(
    p: &[T],
    t: &[T],
    any: T,
    one: T,
    eq: impl Fn(T, T) -> bool,
) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it now stands for the end of.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == one || (p[pi] != any && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_backtracks() {
        assert!(glob("a*b*c", "axxbyybzc"));
        assert!(glob("*", ""));
        assert!(glob("a**", "a"));
        assert!(!glob("a*b", "axxbyy"));
        assert!(!glob("", "a"));
        assert!(glob("é?", "éa"));
        assert!(glob("?", "é"), "one character, not one byte");
        assert!(!glob("??", "é"));
        assert!(glob("s3:Get*", "s3:Get*"), "a pattern matches itself");
        assert!(!glob("s3:get*", "S3:GetObject"));
        assert!(glob_ignoring_case("s3:get*", "S3:GetObject"));
        assert!(
            glob_ignoring_case("É?", "Éa") && !glob_ignoring_case("é", "É"),
            "ASCII only"
        );
    }
}
