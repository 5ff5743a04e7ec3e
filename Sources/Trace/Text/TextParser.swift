/// A syntax error in a text trace or scenario, with its place.
public struct TextError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    public var description: String { "line \(line), column \(column): \(message)" }
}

/// Parses the text form back into a header and events (see ``TextSyntax``).
/// Deterministic: the same text always gives the same events, and the
/// printer's output parses back to exactly the events printed.
public struct TextParser {
    public private(set) var header = TraceHeader(captureMode: "scenario")
    private var d = TextDefaults()
    private var sawEvent = false
    private var lineNo = 0

    public init() {}

    /// Parses a whole text, calling `emit` for each event.
    public static func parse(_ text: String, emit: (Event) throws -> Void) throws -> TraceHeader {
        var p = TextParser()
        var n = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            n += 1
            if let e = try p.parseLine(raw, number: n) { try emit(e) }
        }
        return p.header
    }

    public static func parse(_ text: String) throws -> (TraceHeader, [Event]) {
        var events: [Event] = []
        let h = try parse(text) { events.append($0) }
        return (h, events)
    }

    // MARK: Tokens

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
        TextError(line: lineNo, column: column, message: msg)
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

    // MARK: Lines

    public mutating func parseLine(_ raw: Substring, number: Int) throws(TextError) -> Event? {
        lineNo = number
        var line = raw
        if line.last == "\r" { line = line.dropLast() }
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        if trimmed.isEmpty { return nil }
        if trimmed.first == "!" {
            try headerLine(trimmed.dropFirst(), column: line.count - trimmed.count + 1)
            return nil
        }
        var tokens = try tokenize(line)
        if tokens.isEmpty { return nil }
        var outcome: [Token] = []
        if let arrow = tokens.firstIndex(where: { $0.text == "->" }) {
            outcome = Array(tokens[(arrow + 1)...])
            tokens = Array(tokens[..<arrow])
            if outcome.isEmpty { throw fail(tokens.last.map { $0.column + $0.text.count } ?? 1, "'->' with nothing after it") }
        }
        var seq = d.seq, time = d.time, tid = d.tid
        var k = 0
        while k < tokens.count {
            let t = tokens[k]
            if t.text.hasPrefix("#") {
                guard let v = UInt64(t.text.dropFirst()) else { throw fail(t.column, "bad sequence number '\(t.text)'") }
                seq = v
            } else if t.text.hasPrefix("@") {
                guard let v = TextSyntax.parseTime(t.text.dropFirst()) else { throw fail(t.column, "bad timestamp '\(t.text)'") }
                time = v
            } else if t.key == "tid" {
                guard let v = UInt32(t.value!) else { throw fail(t.column, "bad thread id '\(t.value!)'") }
                tid = v
            } else {
                break
            }
            k += 1
        }
        guard k < tokens.count else { throw fail(tokens.last!.column, "expected an event after the prefix") }
        let verb = tokens[k]
        var args = Args(tokens: Array(tokens[(k + 1)...]), parser: self, verb: String(verb.text), verbColumn: verb.column)
        var out = Outcome(tokens: outcome, parser: self)
        let body = try parseBody(verb, &args, &out)
        try args.finish()
        try out.finish()
        if sawEvent && seq < d.seq {
            throw fail(tokens.first!.column, "sequence number \(seq) goes backwards (expected at least \(d.seq))")
        }
        let e = Event(seq: seq, time: time, tid: tid, body)
        sawEvent = true
        d.advance(past: e)
        return e
    }

    mutating func headerLine(_ s: Substring, column: Int) throws(TextError) {
        if sawEvent { throw fail(column, "header lines (!…) must come before the first event") }
        let key = s.prefix { $0 != " " }
        let value = String(s.dropFirst(key.count).drop { $0 == " " })
        switch key {
        case "format":
            let p = value.split(separator: ".")
            guard p.count == 2, let ma = UInt16(p[0]), let mi = UInt16(p[1]) else { throw fail(column, "bad !format") }
            if ma > TraceHeader.currentMajor { throw fail(column, "format \(ma).\(mi) is newer than this vfiotrace") }
            header.formatMajor = ma
            header.formatMinor = mi
        case "kernel": header.kernelRelease = value
        case "host": header.host = value
        case "tool": header.tool = value
        case "mode": header.captureMode = value
        case "page_size":
            guard let v = UInt32(value), v > 0, v & (v - 1) == 0 else { throw fail(column, "bad !page_size '\(value)'") }
            header.pageSize = v
        case "created":
            guard let v = UInt64(value) else { throw fail(column, "bad !created '\(value)'") }
            header.createdAt = v
        default:
            throw fail(column, "unknown header line '!\(key)' (known: format, kernel, host, tool, mode, page_size, created)")
        }
    }

    // MARK: Arguments

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

    // MARK: Events

    mutating func parseBody(_ verb: Token, _ a: inout Args, _ o: inout Outcome) throws(TextError) -> EventBody {
        let result = try o.parseResult(self)
        switch verb.text {
        case "open":
            guard let path = a.positional() else { throw fail(verb.column, "open needs a path (/dev/vfio/vfio or /dev/vfio/N)") }
            return .open(Open(path: String(path.text), result: result))
        case "close":
            return .close(Close(fd: try a.fd(default: nil), result: result))
        case "get_api_version":
            return .getAPIVersion(GetAPIVersion(fd: try a.fd(default: d.containerFD), result: result))
        case "check_extension", "set_iommu":
            guard let t = a.positional(), let v = TextSyntax.parseExtension(t.text) else {
                throw fail(verb.column, "\(verb.text) needs an IOMMU type (TYPE1, TYPE1v2, … or a number)")
            }
            let fd = try a.fd(default: d.containerFD)
            return verb.text == "set_iommu" ? .setIOMMU(SetIOMMU(fd: fd, iommuType: v, result: result))
                : .checkExtension(CheckExtension(fd: fd, ext: v, result: result))
        case "get_info":
            let fd = try a.fd(default: d.containerFD)
            let argsz = try a.u32("argsz") ?? VFIOUAPI.iommuInfoSize
            var info: IOMMUInfo? = nil
            if o.fields.has("argsz") || o.fields.has("flags") || o.fields.has("cap") {
                var caps: [InfoCapability] = []
                let ia = try o.fields.u32("argsz") ?? argsz
                let fl = try o.fields.flags("flags", VFIOUAPI.infoFlags) ?? 0
                let pg = try o.fields.u64("pgsizes") ?? 0
                let co = try o.fields.u32("cap_offset") ?? 0
                while let c = o.fields.raw("cap") { caps.append(try capability(c)) }
                info = IOMMUInfo(argsz: ia, flags: fl, iovaPgsizes: pg, capOffset: co, caps: caps)
            }
            return .getInfo(GetInfo(fd: fd, argsz: argsz, result: result, info: info))
        case "map_dma":
            let fd = try a.fd(default: d.containerFD)
            let iova = try a.required("iova"), size = try a.required("size")
            let flags = try a.flags("flags", VFIOUAPI.mapFlags) ?? 3
            let vaddr = try a.pointer("vaddr") ?? .valid
            let argsz = try a.u32("argsz") ?? VFIOUAPI.dmaMapSize
            return .mapDMA(MapDMA(fd: fd, argsz: argsz, flags: flags, vaddr: vaddr, iova: iova, size: size, result: result))
        case "unmap_dma":
            let fd = try a.fd(default: d.containerFD)
            let iova = try a.required("iova"), size = try a.required("size")
            let bm = try bitmapArg(&a, rangeSize: size, force: false)
            let flags = try a.flags("flags", VFIOUAPI.unmapFlags) ?? (bm != nil ? VFIOUAPI.unmapFlagGetDirtyBitmap : 0)
            let argsz = try a.u32("argsz") ?? (VFIOUAPI.dmaUnmapMinSize + (bm != nil ? VFIOUAPI.bitmapSize : 0))
            let sizeOut = try o.fields.u64("size")
            var out: BitmapBytes? = nil
            if let t = o.fields.raw("dirty") {
                out = try bitmapValue(t, defaultCount: TextSyntax.defaultCapturedBytes(bm?.size ?? 0))
            }
            return .unmapDMA(UnmapDMA(fd: fd, argsz: argsz, flags: flags, iova: iova, size: size, bitmap: bm,
                                      result: result, sizeOut: sizeOut, bitmapOut: out))
        case "dirty":
            var flags: UInt32
            var wantRange = false
            if a.bare("start") { flags = VFIOUAPI.dirtyFlagStart }
            else if a.bare("stop") { flags = VFIOUAPI.dirtyFlagStop }
            else if a.bare("get") { flags = VFIOUAPI.dirtyFlagGetBitmap; wantRange = true }
            else {
                guard let f = try a.flags("flags", VFIOUAPI.dirtyFlags) else {
                    throw fail(verb.column, "dirty needs start, stop, get or flags=…")
                }
                flags = f
            }
            let fd = try a.fd(default: d.containerFD)
            var range: DirtyRange? = nil
            if wantRange || a.has("iova") {
                let iova = try a.required("iova"), size = try a.required("size")
                range = DirtyRange(iova: iova, size: size, bitmap: try bitmapArg(&a, rangeSize: size, force: true)!)
            }
            let argsz = try a.u32("argsz")
                ?? (range != nil ? VFIOUAPI.dirtyBitmapMinSize + VFIOUAPI.dirtyBitmapGetSize : VFIOUAPI.dirtyBitmapMinSize)
            var out: BitmapBytes? = nil
            if let t = o.fields.raw("dirty") {
                out = try bitmapValue(t, defaultCount: TextSyntax.defaultCapturedBytes(range?.bitmap.size ?? 0))
            }
            return .dirtyPages(DirtyPages(fd: fd, argsz: argsz, flags: flags, range: range, result: result, bitmapOut: out))
        case "group_get_status":
            let fd = try a.fd(default: d.groupFD)
            let argsz = try a.u32("argsz") ?? 8
            let f = try o.fields.flags("flags", VFIOUAPI.groupStatusFlags)
            return .groupGetStatus(GroupGetStatus(fd: fd, argsz: argsz, result: result, flagsOut: f))
        case "group_set_container":
            let fd = try a.fd(default: d.groupFD)
            let c = try a.fd("container", default: d.containerFD)
            guard let kt = a.raw("kind"), let kind = GroupKind(name: kt.value!) else {
                throw fail(verb.column, "group_set_container needs kind=iommu or kind=emulated")
            }
            return .groupSetContainer(GroupSetContainer(fd: fd, container: c, kind: kind, result: result))
        case "group_unset_container":
            return .groupUnsetContainer(GroupUnsetContainer(fd: try a.fd(default: d.groupFD), result: result))
        case "group_get_device_fd":
            let fd = try a.fd(default: d.groupFD)
            guard let name = try a.string("name") else { throw fail(verb.column, "group_get_device_fd needs name=\"…\"") }
            return .groupGetDeviceFD(GroupGetDeviceFD(fd: fd, name: name, result: result))
        case "pin", "unpin":
            guard let g = try a.u32("group") else { throw fail(verb.column, "\(verb.text) needs group=N") }
            let iova = try a.required("iova")
            let n = try a.u32("npage") ?? 1
            if verb.text == "unpin" { return .unpin(Unpin(group: g, iova: iova, npage: n, result: result)) }
            let prot = try a.flags("prot", VFIOUAPI.pinProt) ?? 3
            return .pin(Pin(group: g, iova: iova, npage: n, prot: prot, result: result))
        case "dma_rw":
            guard let g = try a.u32("group") else { throw fail(verb.column, "dma_rw needs group=N") }
            let iova = try a.required("iova"), len = try a.required("len")
            let write: Bool
            if a.bare("write") { write = true } else if a.bare("read") { write = false } else {
                throw fail(verb.column, "dma_rw needs write or read")
            }
            return .dmaRW(DMARW(group: g, iova: iova, length: len, write: write, result: result))
        case "ioctl":
            let fd = try a.fd(default: nil)
            guard let kt = a.raw("kind"), let kind = FDKind(name: kt.value!) else {
                throw fail(verb.column, "ioctl needs kind=container|group|device|other")
            }
            let req = try a.required("req")
            let argIn = try a.raw("arg").map { (t) throws(TextError) in try bytesValue(t) } ?? []
            let argOut = try o.fields.raw("out").map { (t) throws(TextError) in try bytesValue(t) }
            return .rawIoctl(RawIoctl(fd: fd, fdKind: kind, request: req, argIn: argIn, result: result, argOut: argOut))
        case "marker":
            guard let t = a.positional() else { throw fail(verb.column, "marker needs a quoted text") }
            return .marker(Marker(try unquote(t.text, column: t.column)))
        case "loss":
            let n = try a.required("count")
            return .loss(Loss(count: n, reason: try a.string("reason") ?? ""))
        default:
            throw fail(verb.column, "unknown event '\(verb.text)' (known: open, close, get_api_version, check_extension, set_iommu, get_info, map_dma, unmap_dma, dirty, group_get_status, group_set_container, group_unset_container, group_get_device_fd, pin, unpin, dma_rw, ioctl, marker, loss)")
        }
    }

    func capability(_ t: Token) throws(TextError) -> InfoCapability {
        let s = t.valueSub!
        guard let at = s.firstIndex(of: "@"), let colon = s.firstIndex(of: ":") else {
            throw fail(t.column, "capability: expected NAME@OFFSET:vVERSION,…")
        }
        let name = s[..<at]
        guard let off = TextSyntax.number(s[s.index(after: at)..<colon]).flatMap({ UInt32(exactly: $0) }) else {
            throw fail(t.column, "capability: bad offset")
        }
        let fields = s[s.index(after: colon)...].split(separator: ",")
        var kv: [Substring: Substring] = [:]
        var version: UInt16 = 1
        for f in fields {
            if f.hasPrefix("v"), let v = UInt16(f.dropFirst()) { version = v; continue }
            guard let eq = f.firstIndex(of: "=") else { throw fail(t.column, "capability: bad field '\(f)'") }
            kv[f[..<eq]] = f[f.index(after: eq)...]
        }
        func num(_ k: Substring) throws(TextError) -> UInt64 {
            guard let v = kv[k] else { throw fail(t.column, "capability \(name): missing \(k)=") }
            guard let n = TextSyntax.number(v) else { throw fail(t.column, "capability \(name): bad \(k)=\(v)") }
            return n
        }
        let next = UInt32(truncatingIfNeeded: try num("next"))
        var id: UInt16
        let body: InfoCapability.Body
        switch name {
        case "iova_range":
            id = VFIOUAPI.capIOVARange
            var rs: [IOVARange] = []
            for r in (kv["ranges"] ?? "").split(separator: "/") {
                let ends = r.split(separator: "-")
                guard ends.count == 2, let a = TextSyntax.number(ends[0]), let b = TextSyntax.number(ends[1]) else {
                    throw fail(t.column, "capability iova_range: bad range '\(r)'")
                }
                rs.append(IOVARange(start: a, end: b))
            }
            body = .iovaRanges(rs)
        case "migration":
            id = VFIOUAPI.capMigration
            body = .migration(flags: UInt32(truncatingIfNeeded: try num("flags")), hole: UInt32(truncatingIfNeeded: try num("hole")),
                              pgsizeBitmap: try num("pgsizes"), maxDirtyBitmapSize: try num("max"))
        case "dma_avail":
            id = VFIOUAPI.capDMAAvail
            body = .dmaAvail(UInt32(truncatingIfNeeded: try num("avail")))
        default:
            guard name.hasPrefix("id"), let n = UInt16(name.dropFirst(2)) else {
                throw fail(t.column, "capability: unknown name '\(name)' (iova_range, migration, dma_avail, idN)")
            }
            id = n
            var tok = t
            tok.valueSub = kv["raw"] ?? ""
            body = .raw(try bytesValue(tok))
        }
        if let i = kv["id"] {
            guard let n = UInt16(i) else { throw fail(t.column, "capability: bad id") }
            id = n
        }
        return InfoCapability(id: id, version: version, offset: off, next: next, body: body)
    }
}
