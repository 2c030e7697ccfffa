//! How deep brackets nest in a query language's text, counted before its parser sees it: the
//! CEL and PromQL parsers recurse per bracket, so an untrusted check file's `((((…` overflowed
//! the stack inside them. Hand-written because it is the parsers' own lexing that cannot be
//! trusted with such text; it needs only where strings and comments start and end.

/// The deepest nesting of `(`, `[` and `{` outside strings and comments. A string opens with any
/// byte of `quotes` and closes with the same byte; a backslash in it escapes the next byte. A
/// comment runs from `comment` to the end of the line. An unclosed string ends the count (the
/// parser refuses it anyway).
pub fn deepest(text: &str, quotes: &[u8], comment: Option<u8>) -> usize {
    let (mut level, mut deepest) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    // Bytes, not chars: every delimiter is ASCII, and no byte of a multi-byte character equals
    // one, so skipping the byte after a backslash skips what skipping its character did.
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match (quote, b) {
            (Some(_), b'\\') => {
                bytes.next();
            }
            (Some(q), b) if b == q => quote = None,
            (None, b) if quotes.contains(&b) => quote = Some(b),
            (None, b) if Some(b) == comment => {
                bytes.by_ref().find(|&c| c == b'\n');
            }
            (None, b'(' | b'[' | b'{') => {
                level += 1;
                deepest = deepest.max(level);
            }
            (None, b')' | b']' | b'}') => level = level.saturating_sub(1),
            // Text inside a literal, or any other token.
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::deepest;

    #[test]
    fn strings_and_comments_are_text() {
        assert_eq!(deepest("f(a[b{c}])", b"'\"", None), 3);
        assert_eq!(deepest(r#"f("((\"((") + g('(')"#, b"'\"", None), 1);
        assert_eq!(deepest("up # (((\n+ (up)", b"'\"`", Some(b'#')), 1);
        assert_eq!(deepest("x{a=`((`}", b"'\"`", Some(b'#')), 1);
        // Closing more than opened does not go below zero.
        assert_eq!(deepest("))((", b"'\"", None), 2);
    }
}
