//! Name patterns shared by several dimensions: FQDN patterns (`*.cilium.io`),
//! node name patterns (`[cluster/]node`) and plain `*` globs.

use regex::Regex;

/// Matches one FQDN label sequence (a cluster or node name), as upstream's
/// `fqdnRegexpStr`; used for an empty part of a node name pattern.
const ANY_FQDN: &str = r"(?:[-0-9_a-z]+(?:\.[-0-9_a-z]+)*)";

/// Appends the regular expression of one FQDN pattern to `re`.
///
/// The pattern is trimmed, loses one trailing dot and is lowercased; then
/// `*` matches `[-.0-9a-z]*`, `.` matches itself, and only `-`, `_`,
/// digits and lowercase letters may appear besides.
pub(crate) fn push_fqdn_regex(re: &mut String, pattern: &str) -> Result<(), String> {
    let trimmed = pattern.trim();
    let canonical = trimmed.strip_suffix('.').unwrap_or(trimmed).to_lowercase();
    if canonical.is_empty() {
        return Err("empty pattern".into());
    }
    if canonical.ends_with('.') {
        return Err("multiple trailing dots in pattern".into());
    }
    for c in canonical.chars() {
        match c {
            '.' => re.push_str(r"\."),
            '*' => re.push_str("[-.0-9a-z]*"),
            '-' | '_' | '0'..='9' | 'a'..='z' => re.push(c),
            _ => return Err(format!("invalid character {c:?} in pattern")),
        }
    }
    Ok(())
}

/// Compiles FQDN patterns into one anchored regular expression matching any
/// of them.
pub(crate) fn fqdn_regex<'a>(
    patterns: impl IntoIterator<Item = &'a String>,
) -> Result<Regex, (String, String)> {
    let mut re = String::from(r"\A(?:");
    for (i, p) in patterns.into_iter().enumerate() {
        if i > 0 {
            re.push('|');
        }
        push_fqdn_regex(&mut re, p).map_err(|e| (p.clone(), e))?;
    }
    re.push_str(r")\z");
    // Only our own, validated syntax reaches the compiler; a failure here
    // would be a size limit, reported against the whole field.
    Regex::new(&re).map_err(|e| (String::new(), e.to_string()))
}

/// A node name pattern: `[cluster/]node`, each part an FQDN pattern, an
/// empty part matching any name. Without a `/` it matches the node part in
/// every cluster.
#[derive(Debug)]
pub(crate) struct NodeNamePattern {
    cluster: Regex,
    node: Regex,
}

impl NodeNamePattern {
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        let parts: Vec<&str> = pattern.split('/').collect();
        let (cluster, node) = match parts[..] {
            [node] => ("", node),
            [cluster, node] => (cluster, node),
            _ => return Err("too many slashes in pattern".into()),
        };
        let part = |p: &str| -> Result<Regex, String> {
            let mut re = String::from(r"\A");
            if p.is_empty() {
                re.push_str(ANY_FQDN);
            } else {
                push_fqdn_regex(&mut re, p)?;
            }
            re.push_str(r"\z");
            Regex::new(&re).map_err(|e| e.to_string())
        };
        Ok(NodeNamePattern {
            cluster: part(cluster)?,
            node: part(node)?,
        })
    }

    /// Matches a node name already split into its cluster and node parts.
    pub(crate) fn matches(&self, cluster: &str, node: &str) -> bool {
        self.cluster.is_match(cluster) && self.node.is_match(node)
    }
}

/// A glob where `*` matches any run of characters and everything else
/// matches itself. Without `*` it is an exact comparison.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    /// The pattern split at each `*`; one part means no `*`.
    parts: Vec<String>,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Self {
        Glob {
            parts: pattern.split('*').map(str::to_owned).collect(),
        }
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(x) => x,
            None => return s.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return s == first;
        };
        let Some(mut s) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        for part in middle {
            match s.find(part.as_str()) {
                Some(i) => s = &s[i + part.len()..],
                None => return false,
            }
        }
        s.len() >= last.len() && s.ends_with(last.as_str())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::exact("cilium.io", "cilium.io", true)]
    #[case::trailing_dot("cilium.io.", "cilium.io", true)]
    #[case::uppercase("CILIUM.io", "cilium.io", true)]
    #[case::spaces("  cilium.io ", "cilium.io", true)]
    #[case::star("*.cilium.io", "docs.cilium.io", true)]
    #[case::star_crosses_dots("*.cilium.io", "a.b.cilium.io", true)]
    #[case::star_empty("*cilium.io", "cilium.io", true)]
    #[case::dot_is_literal("cilium.io", "ciliumxio", false)]
    #[case::anchored("cilium.io", "docs.cilium.io", false)]
    #[case::underscore("_http._tcp.cilium.io", "_http._tcp.cilium.io", true)]
    #[case::star_excludes_underscore("*.cilium.io", "_x.cilium.io", false)]
    #[case::name_not_lowercased("cilium.io", "CILIUM.io", false)]
    fn fqdn(#[case] pattern: &str, #[case] name: &str, #[case] want: bool) {
        let re = fqdn_regex([&pattern.to_string()]).unwrap();
        assert_eq!(re.is_match(name), want);
    }

    #[rstest]
    #[case::empty("", "empty pattern")]
    #[case::only_dot(".", "empty pattern")]
    #[case::two_dots("cilium.io..", "multiple trailing dots in pattern")]
    #[case::bad_char("cilium.io/x", "invalid character '/' in pattern")]
    #[case::regex_syntax("cilium.(io|com)", "invalid character '(' in pattern")]
    fn fqdn_invalid(#[case] pattern: &str, #[case] reason: &str) {
        let (value, err) = fqdn_regex([&pattern.to_string()]).unwrap_err();
        assert_eq!(value, pattern);
        assert_eq!(err, reason);
    }

    #[rstest]
    #[case::node_any_cluster("k8s1", "default", "k8s1", true)]
    #[case::node_other_cluster("k8s1", "prod", "k8s1", true)]
    #[case::node_star("k8s*", "c", "k8s2", true)]
    #[case::node_miss("k8s*", "c", "node1", false)]
    #[case::cluster_and_node("prod/k8s1", "prod", "k8s1", true)]
    #[case::cluster_differs("prod/k8s1", "test", "k8s1", false)]
    #[case::cluster_only("prod/", "prod", "anything.example.com", true)]
    #[case::any_cluster("/k8s1", "whatever", "k8s1", true)]
    #[case::cluster_glob("prod-*/*.company.com", "prod-eu", "node01.company.com", true)]
    fn node_name(
        #[case] pattern: &str,
        #[case] cluster: &str,
        #[case] node: &str,
        #[case] want: bool,
    ) {
        assert_eq!(
            NodeNamePattern::new(pattern)
                .unwrap()
                .matches(cluster, node),
            want
        );
    }

    #[rstest]
    #[case::empty("", "empty pattern")]
    #[case::slashes("a/b/c", "too many slashes in pattern")]
    #[case::bad_char("node!", "invalid character '!' in pattern")]
    fn node_name_invalid(#[case] pattern: &str, #[case] reason: &str) {
        assert_eq!(NodeNamePattern::new(pattern).unwrap_err(), reason);
    }

    #[rstest]
    #[case::exact("prod", "prod", true)]
    #[case::exact_miss("prod", "prod-1", false)]
    #[case::suffix("prod-*", "prod-1", true)]
    #[case::prefix("*-1", "prod-1", true)]
    #[case::middle("p*d-*1", "prod-eu-1", true)]
    #[case::overlap("ab*ba", "aba", false)]
    #[case::star_only("*", "", true)]
    #[case::double_star("a**b", "ab", true)]
    #[case::unicode("é*", "été", true)]
    fn glob(#[case] pattern: &str, #[case] s: &str, #[case] want: bool) {
        assert_eq!(Glob::new(pattern).matches(s), want);
    }
}
