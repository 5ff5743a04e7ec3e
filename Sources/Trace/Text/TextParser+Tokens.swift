/// Splitting a line into tokens: words, `key=value` pairs and quoted
/// strings with their escapes; a ` # ` starts a comment.
extension TextParser {
    struct Token {
        var text: Substring
        var column: Int
        /// For `key=value`: the key and the value (quotes removed and
        /// escapes resolved for quoted values).
        var key: Substring?
        var value: String?
        var valueSub: Substring?
    }

    func fail(_ column: Int, _ msg: String) -> TextError {
        TextError(line: lineNo, column: column, message: Self.clippingLongWords(msg))
    }

    /// A message with every word over 80 characters cut to its first 60 and
    /// its length: an error quoting a 10 MB token stays one short line.
    static func clippingLongWords(_ msg: String) -> String {
        guard msg.utf8.count > 80 else { return msg }
        return msg.split(separator: " ", omittingEmptySubsequences: false).map { w in
            guard w.count > 80 else { return String(w) }
            // Trailing punctuation of the sentence stays.
            let tail = w.last.map { ":,;'\")".contains($0) } == true ? String(w.last!) : ""
            return "\(w.prefix(60))…(\(w.utf8.count) bytes)" + tail
        }.joined(separator: " ")
    }

    func unquote(_ s: Substring, column: Int) throws(TextError) -> String {
        guard s.count >= 2, s.first == "\"", s.last == "\"" else { throw fail(column, "expected a quoted string") }
        var out = String.UnicodeScalarView()
        var it = s.dropFirst().dropLast().unicodeScalars.makeIterator()
        while let c = it.next() {
            if c != "\\" { out.append(c); continue }
            switch it.next() {
            case "n"?: out.append("\n")
            case "t"?: out.append("\t")
            case "\""?: out.append("\"")
            case "\\"?: out.append("\\")
            case "x"?:
                guard let a = it.next(), let b = it.next(), let v = UInt8(String([Character(a), Character(b)]), radix: 16) else {
                    throw fail(column, "bad \\x escape")
                }
                out.append(Unicode.Scalar(v))
            default: throw fail(column, "bad escape in string")
            }
        }
        return String(out)
    }

    /// Splits on spaces outside quotes; stops at ` # ` comments.
    func tokenize(_ line: Substring) throws(TextError) -> [Token] {
        var tokens: [Token] = []
        var i = line.startIndex
        var col = 1
        while i < line.endIndex {
            if line[i] == " " || line[i] == "\t" { i = line.index(after: i); col += 1; continue }
            if line[i] == "#", !tokens.isEmpty || line.index(after: i) == line.endIndex
                || !(line[line.index(after: i)].isNumber) {
                break // comment to end of line
            }
            let start = i, startCol = col
            var inQuote = false
            while i < line.endIndex {
                let c = line[i]
                if c == "\\" && inQuote {
                    i = line.index(after: i); col += 1
                    if i < line.endIndex { i = line.index(after: i); col += 1 }
                    continue
                }
                if c == "\"" { inQuote.toggle() }
                if !inQuote && (c == " " || c == "\t") { break }
                i = line.index(after: i); col += 1
            }
            if inQuote { throw fail(startCol, "unterminated string") }
            let text = line[start..<i]
            // `iova = 0x1`, `iova =0x1`: say so where it goes wrong. (`key=`
            // alone is an empty value, which some fields have.)
            if text.first == "=" {
                throw fail(startCol, "write key=value without spaces around '='")
            }
            var t = Token(text: text, column: startCol)
            if text.first != "\"", let eq = text.firstIndex(of: "=") {
                t.key = text[..<eq]
                let v = text[text.index(after: eq)...]
                t.valueSub = v
                t.value = v.first == "\"" ? try unquote(v, column: startCol) : String(v)
            }
            tokens.append(t)
        }
        return tokens
    }
}
