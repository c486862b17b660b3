//! Escaping for HTML/SVG text and attribute values, and a tiny allow-list sanitizer for inline HTML.

/// Escapes `&`, `<`, `>`, `"` and `'` so that `s` is safe both as element text and as a quoted
/// attribute value in HTML and SVG.
///
/// ```
/// assert_eq!(mesalab_report::escape::text("a < b & \"c\""), "a &lt; b &amp; &quot;c&quot;");
/// ```
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline are not allowed in XML 1.0 text.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Same as [`text`]; named for call sites that build attribute values.
pub fn attr(s: &str) -> String {
    text(s)
}

/// Inline tags that [`inline_html`] lets through (without attributes).
pub const ALLOWED_INLINE_TAGS: &[&str] =
    &["code", "em", "strong", "b", "i", "sub", "sup", "kbd", "var", "samp", "mark", "small", "br"];

/// Sanitizes a fragment of inline HTML: keeps the tags in [`ALLOWED_INLINE_TAGS`] when they carry
/// no attributes, keeps well-formed character references (`&amp;`, `&#8804;`), and escapes
/// everything else. Unmatched closing tags are dropped and unclosed tags are closed at the end, so
/// the result is always balanced.
///
/// ```
/// use mesalab_report::escape::inline_html;
/// assert_eq!(inline_html("<code>x<y</code> & <b onclick=\"\">"), "<code>x&lt;y</code> &amp; &lt;b onclick=&quot;&quot;&gt;");
/// ```
pub fn inline_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut open: Vec<&str> = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some((tag, closing, len)) = parse_simple_tag(rest)
                && let Some(&allowed) = ALLOWED_INLINE_TAGS.iter().find(|t| **t == tag)
            {
                if allowed == "br" {
                    if !closing {
                        out.push_str("<br>");
                    }
                } else if !closing {
                    out.push('<');
                    out.push_str(allowed);
                    out.push('>');
                    open.push(allowed);
                } else if let Some(pos) = open.iter().rposition(|t| *t == allowed) {
                    // Close everything opened after it, then it (keeps nesting valid).
                    while open.len() > pos {
                        let t = open.pop().expect("non-empty");
                        out.push_str("</");
                        out.push_str(t);
                        out.push('>');
                    }
                }
                rest = &rest[len..];
                continue;
            }
            out.push_str("&lt;");
            rest = &rest[1..];
        } else if c == '&' {
            let len = entity_len(rest);
            if len > 0 {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
            } else {
                out.push_str("&amp;");
                rest = &rest[1..];
            }
        } else {
            let mut buf = [0u8; 4];
            out.push_str(&text(c.encode_utf8(&mut buf)));
            rest = &rest[c.len_utf8()..];
        }
    }
    while let Some(t) = open.pop() {
        out.push_str("</");
        out.push_str(t);
        out.push('>');
    }
    out
}

/// Parses `<name>`, `</name>` or `<name/>` (ASCII letters only, optional whitespace before `>`).
/// Returns the lower-cased name, whether it is a closing tag, and the byte length.
fn parse_simple_tag(s: &str) -> Option<(String, bool, usize)> {
    let b = s.as_bytes();
    let mut i = 1;
    let closing = b.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_alphanumeric() {
        i += 1;
    }
    if i == start {
        return None;
    }
    let name = s[start..i].to_ascii_lowercase();
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if !closing && b.get(i) == Some(&b'/') {
        i += 1;
    }
    if b.get(i) == Some(&b'>') { Some((name, closing, i + 1)) } else { None }
}

/// Byte length of a well-formed character reference at the start of `s` (`&name;`, `&#123;`,
/// `&#x1F;`), or 0.
fn entity_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    let numeric = b.get(i) == Some(&b'#');
    if numeric {
        i += 1;
    }
    let hex = numeric && matches!(b.get(i), Some(b'x' | b'X'));
    if hex {
        i += 1;
    }
    let start = i;
    while i < b.len() && i - start < 32 {
        let ok = if hex {
            b[i].is_ascii_hexdigit()
        } else if numeric {
            b[i].is_ascii_digit()
        } else {
            b[i].is_ascii_alphanumeric()
        };
        if !ok {
            break;
        }
        i += 1;
    }
    if i > start && b.get(i) == Some(&b';') { i + 1 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_specials() {
        assert_eq!(
            text(r#"<script>alert('x') & "y"</script>"#),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(text("plain ÷ ü"), "plain ÷ ü");
        assert_eq!(text("a\u{1}b"), "a\u{FFFD}b");
    }

    #[test]
    fn inline_html_keeps_allowed_tags_only() {
        assert_eq!(inline_html("use <code>W_KQ</code>"), "use <code>W_KQ</code>");
        assert_eq!(inline_html("<script>x</script>"), "&lt;script&gt;x&lt;/script&gt;");
        assert_eq!(inline_html("<code class=\"x\">y</code>"), "&lt;code class=&quot;x&quot;&gt;y");
        assert_eq!(inline_html("a<br/>b<br>"), "a<br>b<br>");
        assert_eq!(inline_html("&le; &amp; & &#8804; &#x41; &bogus"), "&le; &amp; &amp; &#8804; &#x41; &amp;bogus");
    }

    #[test]
    fn inline_html_balances() {
        assert_eq!(inline_html("<b><i>x</b>"), "<b><i>x</i></b>");
        assert_eq!(inline_html("</em>x<strong>y"), "x<strong>y</strong>");
        assert_eq!(inline_html("x < y > z"), "x &lt; y &gt; z");
    }
}
