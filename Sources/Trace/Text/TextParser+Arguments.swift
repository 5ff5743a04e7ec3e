/// The arguments of an event line: `key=value` lookups that mark what
/// was used (anything left over is an error), numbers with size suffixes,
/// bitmaps as page runs or hex, byte strings, pointer classes.
extension TextParser {
    struct Args {
        var tokens: [Token]
        let parser: TextParser
        let verb: String
        let verbColumn: Int
        var used: [Bool]

        init(tokens: [Token], parser: TextParser, verb: String, verbColumn: Int = 1) {
            self.tokens = tokens
            self.parser = parser
            self.verb = verb
            self.verbColumn = verbColumn
            used = Array(repeating: false, count: tokens.count)
        }

        mutating func raw(_ key: String) -> Token? {
            for (i, t) in tokens.enumerated() where !used[i] && t.key.map({ $0 == key }) == true {
                used[i] = true
                return t
            }
            return nil
        }

        func has(_ key: String) -> Bool { tokens.contains { $0.key.map { $0 == key } == true } }

        mutating func bare(_ word: String) -> Bool {
            for (i, t) in tokens.enumerated() where !used[i] && t.key == nil && t.text == word {
                used[i] = true
                return true
            }
            return false
        }

        /// The next unused bare token (a positional argument).
        mutating func positional() -> Token? {
            for (i, t) in tokens.enumerated() where !used[i] && t.key == nil {
                used[i] = true
                return t
            }
            return nil
        }

        mutating func u64(_ key: String) throws(TextError) -> UInt64? {
            guard let t = raw(key) else { return nil }
            guard let v = TextSyntax.number(t.valueSub!) else {
                if t.valueSub!.hasPrefix("{host:") {
                    // A rule's placeholder (RuleScenario.text(on:) in Conform).
                    throw parser.fail(t.column, "\(key)=\(t.valueSub!): a host trait that `vfiotrace conform` fills in from "
                                      + "the target's host; run the rule with `vfiotrace conform --rules ID`")
                }
                throw parser.fail(t.column, "\(key)=\(t.valueSub!): not a number (use 4096, 0x1000 or 4K)")
            }
            return v
        }

        mutating func u32(_ key: String) throws(TextError) -> UInt32? {
            guard let t = raw(key) else { return nil }
            guard let v = TextSyntax.number(t.valueSub!), let r = UInt32(exactly: v) else {
                throw parser.fail(t.column, "\(key)=\(t.valueSub!): not a 32-bit number")
            }
            return r
        }

        mutating func fd(_ key: String = "fd", default def: Int32?) throws(TextError) -> Int32 {
            if let t = raw(key) {
                guard let v = Int32(t.value!) else { throw parser.fail(t.column, "\(key)=\(t.value!): not a file descriptor") }
                return v
            }
            guard let def else {
                throw parser.fail(verbColumn, "\(verb): no \(key)= given and no earlier open to take it from")
            }
            return def
        }

        mutating func required(_ key: String) throws(TextError) -> UInt64 {
            guard let v = try u64(key) else { throw parser.fail(verbColumn, "\(verb) needs \(key)=") }
            return v
        }

        mutating func flags(_ key: String, _ names: [(UInt32, String)]) throws(TextError) -> UInt32? {
            guard let t = raw(key) else { return nil }
            guard let v = TextSyntax.parseFlags(t.valueSub!, names) else {
                throw parser.fail(t.column, "\(key)=\(t.valueSub!): unknown flag (known: \(names.map(\.1).joined(separator: ", ")))")
            }
            return v
        }

        mutating func pointer(_ key: String) throws(TextError) -> UserPointer? {
            guard let t = raw(key) else { return nil }
            guard let v = TextSyntax.parsePointer(t.valueSub!) else {
                throw parser.fail(t.column, "\(key)=\(t.valueSub!): expected null, valid, unmapped, kernel or readonly, optionally +OFFSET and /BYTES")
            }
            return v
        }

        mutating func string(_ key: String) throws(TextError) -> String? {
            guard let t = raw(key) else { return nil }
            return t.value!
        }

        func finish() throws(TextError) {
            for (i, t) in tokens.enumerated() where !used[i] {
                throw parser.fail(t.column, "unexpected '\(t.text)' for \(verb)")
            }
        }
    }

    struct Outcome {
        var result: CallResult?
        var fields: Args

        init(tokens: [Token], parser: TextParser) {
            fields = Args(tokens: Array(tokens.dropFirst()), parser: parser, verb: "the outcome")
            result = nil
            resultToken = tokens.first
        }

        var resultToken: Token?

        mutating func parseResult(_ p: TextParser) throws(TextError) -> CallResult? {
            guard let t = resultToken else { return nil }
            if t.text == "ok" { return .ok(0) }
            if t.text == "-" { return nil }
            if let v = TextSyntax.signed(t.text) { return .ok(v) }
            if t.text.hasPrefix("E"), let e = ErrnoName.number(String(t.text)) { return .error(e) }
            throw p.fail(t.column, "expected ok, a number or an errno name (EINVAL, …) after '->', got '\(t.text)'")
        }

        func finish() throws(TextError) { try fields.finish() }
    }

    func bitmapValue(_ t: Token, defaultCount: UInt64) throws(TextError) -> BitmapBytes {
        var s = t.valueSub!
        var count = defaultCount
        if let slash = s.lastIndex(of: "/"), !s[slash...].contains("]"), !s[slash...].contains(")") {
            guard let n = TextSyntax.number(s[s.index(after: slash)...]) else { throw fail(t.column, "bad byte count after '/'") }
            count = n
            s = s[..<slash]
        }
        guard count <= EventCodec.maxBitmapBytes else {
            throw fail(t.column, "bitmap of \(count) bytes is larger than a trace keeps (\(EventCodec.maxBitmapBytes))")
        }
        if s.hasPrefix("[") && s.hasSuffix("]") {
            var runs: [Range<UInt64>] = []
            for part in s.dropFirst().dropLast().split(separator: ",") {
                let ends = part.split(separator: ".", omittingEmptySubsequences: true)
                if part.contains("..") && ends.count == 2, let a = TextSyntax.number(ends[0]), let b = TextSyntax.number(ends[1]), a <= b, b < UInt64.max {
                    runs.append(a..<(b + 1))
                } else if let a = TextSyntax.number(part), a < UInt64.max {
                    runs.append(a..<(a + 1))
                } else {
                    throw fail(t.column, "bad page list element '\(part)' (use 3 or 10..12)")
                }
            }
            if let top = runs.map(\.upperBound).max(), top > count * 8 {
                throw fail(t.column, "bit \(top - 1) lies past the buffer's \(count) bytes")
            }
            return BitmapBytes(byteCount: count, setBits: runs)
        }
        if s.hasPrefix("fill(") && s.hasSuffix(")") {
            guard let v = TextSyntax.number(s.dropFirst(5).dropLast()), let b = UInt8(exactly: v) else {
                throw fail(t.column, "fill() takes one byte value")
            }
            return BitmapBytes(repeating: b, count: count)
        }
        if s.hasPrefix("bytes(") && s.hasSuffix(")") {
            var b = BitmapBytes.Builder()
            for part in s.dropFirst(6).dropLast().split(separator: ",") {
                if let star = part.firstIndex(of: "*") {
                    guard let v = UInt8(part[..<star], radix: 16), let n = UInt64(part[part.index(after: star)...]),
                          b.count + n <= EventCodec.maxBitmapBytes else {
                        throw fail(t.column, "bad run '\(part)' in bytes()")
                    }
                    b.append(v, count: n)
                } else {
                    guard part.count % 2 == 0 else { throw fail(t.column, "odd number of hex digits in bytes()") }
                    var i = part.startIndex
                    while i < part.endIndex {
                        let j = part.index(i, offsetBy: 2)
                        guard let v = UInt8(part[i..<j], radix: 16) else { throw fail(t.column, "bad hex in bytes()") }
                        b.append(v, count: 1)
                        i = j
                    }
                }
            }
            let r = b.build()
            if count != defaultCount && r.count != count { throw fail(t.column, "bytes() holds \(r.count) bytes, /\(count) says otherwise") }
            return r
        }
        throw fail(t.column, "expected a page list [3,10..12], fill(0xNN) or bytes(…)")
    }

    func bytesValue(_ t: Token) throws(TextError) -> [UInt8] {
        let s = t.valueSub!
        if s == "\"\"" { return [] }
        guard s.count % 2 == 0 else { throw fail(t.column, "odd number of hex digits") }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let v = UInt8(s[i..<j], radix: 16) else { throw fail(t.column, "bad hex byte '\(s[i..<j])'") }
            out.append(v)
            i = j
        }
        return out
    }

    mutating func bitmapArg(_ a: inout Args, rangeSize: UInt64, force: Bool) throws(TextError) -> BitmapArg? {
        let any = a.bare("bitmap")
        guard force || any || a.has("pgsize") || a.has("bitmap_size") || a.has("data") || a.has("prior") else { return nil }
        let pgsize = try a.u64("pgsize") ?? 4096
        let size = try a.u64("bitmap_size") ?? TextSyntax.defaultBitmapSize(rangeSize: rangeSize, pgsize: pgsize)
        let data = try a.pointer("data") ?? .valid
        var prior: BitmapBytes? = nil
        if let t = a.raw("prior") { prior = try bitmapValue(t, defaultCount: TextSyntax.defaultCapturedBytes(size)) }
        return BitmapArg(pgsize: pgsize, size: size, data: data, prior: prior)
    }
}
