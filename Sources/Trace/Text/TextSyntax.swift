/// Shared pieces of the text form: number and size spelling, flag names,
/// and the defaulting state that printer and parser keep in step.
///
/// The text form shows one event a line:
///
///     [#SEQ] [@SECONDS] [tid=N] VERB ARGS… [-> OUTCOME FIELDS…]
///
/// Anything equal to its default is left out (the sequence number that
/// follows the previous one, the same timestamp and thread, the fd of the
/// most recently opened container or group, the usual argsz), so a
/// hand-written scenario stays short and `cat` of a recorded trace stays
/// exact. Header lines start with `!`; comments with `# `.
public enum TextSyntax {
    /// Spells a byte count the way kernel developers write it when exact
    /// (`4K`, `2M`, `8T`), otherwise in hex.
    public static func size(_ v: UInt64) -> String {
        if v < 1024 { return String(v) }
        let units: [(UInt64, String)] = [(1 << 60, "E"), (1 << 50, "P"), (1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")]
        for (u, s) in units where v % u == 0 { return "\(v / u)\(s)" }
        return hex(v)
    }

    public static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// Parses `123`, `0x7b`, `4K`, `2M`, `0x10M`, `8T`; nil on anything else
    /// or on overflow.
    public static func number(_ s: Substring) -> UInt64? {
        var body = s
        var mult: UInt64 = 1
        if let last = body.last, !body.hasPrefix("0x") || "KMGTPE".contains(last) {
            let m: UInt64? = switch last {
            case "K": 1 << 10
            case "M": 1 << 20
            case "G": 1 << 30
            case "T": 1 << 40
            case "P": 1 << 50
            case "E": 1 << 60
            default: nil
            }
            if let m { mult = m; body = body.dropLast() }
        }
        guard !body.isEmpty else { return nil }
        let v: UInt64?
        if body.hasPrefix("0x") || body.hasPrefix("0X") {
            v = UInt64(body.dropFirst(2), radix: 16)
        } else {
            v = UInt64(body, radix: 10)
        }
        guard let v else { return nil }
        let (r, o) = v.multipliedReportingOverflow(by: mult)
        return o ? nil : r
    }

    public static func signed(_ s: Substring) -> Int64? {
        if s.hasPrefix("-") {
            guard let u = number(s.dropFirst()), u <= UInt64(Int64.max) + 1 else { return nil }
            return u == UInt64(Int64.max) + 1 ? Int64.min : -Int64(u)
        }
        guard let u = number(s), u <= UInt64(Int64.max) else { return nil }
        return Int64(u)
    }

    /// `READ|WRITE`, with unknown bits as hex: `READ|0x10`; `0` when empty.
    public static func flags(_ v: UInt32, _ names: [(UInt32, String)]) -> String {
        if v == 0 { return "0" }
        var parts: [String] = []
        var rest = v
        for (bit, name) in names where v & bit != 0 {
            parts.append(name)
            rest &= ~bit
        }
        if rest != 0 { parts.append(hex(UInt64(rest))) }
        return parts.joined(separator: "|")
    }

    public static func parseFlags(_ s: Substring, _ names: [(UInt32, String)]) -> UInt32? {
        var v: UInt32 = 0
        for p in s.split(separator: "|", omittingEmptySubsequences: false) {
            if let n = names.first(where: { $0.1 == p }) {
                v |= n.0
            } else if let n = number(p), let n32 = UInt32(exactly: n) {
                v |= n32
            } else {
                return nil
            }
        }
        return v
    }

    /// `TYPE1v2` for known extension ids, else the number.
    public static func extensionName(_ v: UInt64) -> String {
        VFIOUAPI.extensionNames.first { $0.0 == v }?.1 ?? String(v)
    }

    public static func parseExtension(_ s: Substring) -> UInt64? {
        VFIOUAPI.extensionNames.first { $0.1 == s }?.0 ?? number(s)
    }

    /// `@12.000000345`: seconds with nanoseconds, exact.
    public static func time(_ ns: UInt64) -> String {
        let frac = String(ns % 1_000_000_000)
        return "@\(ns / 1_000_000_000).\(String(repeating: "0", count: 9 - frac.count))\(frac)"
    }

    public static func parseTime(_ s: Substring) -> UInt64? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let sec = UInt64(parts[0]) else { return nil }
        var ns: UInt64 = 0
        if parts.count == 2 {
            let f = parts[1]
            guard !f.isEmpty, f.count <= 9, let v = UInt64(f) else { return nil }
            ns = v * [1, 10, 100, 1000, 10000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000][9 - f.count]
        }
        let (a, o1) = sec.multipliedReportingOverflow(by: 1_000_000_000)
        let (b, o2) = a.addingReportingOverflow(ns)
        return o1 || o2 ? nil : b
    }

    /// `valid`, `null`, `valid+0x10`, `valid/4096`, `readonly+0x8/64`.
    public static func pointer(_ p: UserPointer) -> String {
        var s = p.pointerClass.name
        if p.pageOffset != 0 { s += "+" + hex(p.pageOffset) }
        if let a = p.accessibleBytes { s += "/" + String(a) }
        return s
    }

    public static func parsePointer(_ s: Substring) -> UserPointer? {
        var rest = s
        var acc: UInt64? = nil
        if let slash = rest.firstIndex(of: "/") {
            guard let a = number(rest[rest.index(after: slash)...]) else { return nil }
            acc = a
            rest = rest[..<slash]
        }
        var off: UInt64 = 0
        if let plus = rest.firstIndex(of: "+") {
            guard let o = number(rest[rest.index(after: plus)...]) else { return nil }
            off = o
            rest = rest[..<plus]
        }
        guard let c = UserPointer.Class(name: String(rest)) else { return nil }
        return UserPointer(c, pageOffset: off, accessibleBytes: acc)
    }

    /// Default bitmap buffer size for a range: `ALIGN(size / pgsize, 64) / 8`,
    /// what a correct caller passes (QEMU's `vfio_bitmap_alloc`).
    public static func defaultBitmapSize(rangeSize: UInt64, pgsize: UInt64) -> UInt64 {
        guard pgsize > 0 else { return 8 }
        let pages = rangeSize / pgsize
        return (pages / 64 + (pages % 64 != 0 ? 1 : 0)) &* 8
    }

    /// How many bytes of a bitmap buffer a trace keeps by default: the
    /// buffer's size, capped at the format's bitmap limit.
    public static func defaultCapturedBytes(_ bitmapSize: UInt64) -> UInt64 {
        min(bitmapSize, EventCodec.maxBitmapBytes)
    }

    /// `s` as one word of the text form: as it is when it is plain (printable
    /// ASCII without spaces, quotes, `#` or backslashes, not empty), else
    /// quoted with escapes. Strings from a trace (header fields, open paths,
    /// loss reasons) are printed through this, so a newline or an escape
    /// sequence in one can neither forge lines nor reach a terminal.
    public static func word(_ s: String) -> String {
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" && $0 != "#" }
        return plain ? s : quote(s)
    }

    /// Like ``word(_:)`` but spaces are plain too: a header value such as
    /// `vfiotrace 0.1.0` stays as it was written.
    public static func headerValue(_ s: String) -> String {
        let plain = !s.isEmpty && s.first != " " && s.last != " "
            && s.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }
        return plain ? s : quote(s)
    }

    /// Quoted string with `\"`, `\\`, `\n`, `\t` and `\xNN` escapes.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F: out += "\\x" + (u.value < 16 ? "0" : "") + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// Bitmap contents: `[3,10..12]` (set bits, inclusive ranges),
    /// `fill(0xa5)` (every byte the same), or `bytes(a5a5,00*4096,…)`
    /// (hex literals and `XX*N` runs) when neither is short. A `/N` suffix
    /// gives the byte length when it is not the default.
    public static func bitmap(_ b: BitmapBytes, defaultCount: UInt64) -> String {
        var s: String
        if let u = b.uniformByte, u != 0 && u != 0xFF, b.count > 0 {
            s = "fill(\(String(format2: u)))"
        } else {
            // Runs only while they are few: never 2^30 of them in memory.
            if let runs = b.setBitRuns(limit: 4096),
               runs.count <= 256 || b.segments.allSatisfy({ if case .fill = $0 { return true }; return false }) {
                s = "[" + runs.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)..\($0.upperBound - 1)" }
                    .joined(separator: ",") + "]"
            } else {
                var parts: [String] = []
                for seg in b.segments {
                    switch seg {
                    case .fill(let byte, let n): parts.append("\(hexByte(byte))*\(n)")
                    case .literal(let l): parts.append(l.map(hexByte).joined())
                    }
                }
                s = "bytes(" + parts.joined(separator: ",") + ")"
            }
        }
        if b.count != defaultCount { s += "/\(b.count)" }
        return s
    }

    static func hexByte(_ b: UInt8) -> String {
        let d = Array("0123456789abcdef")
        return String([d[Int(b >> 4)], d[Int(b & 15)]])
    }
}

extension String {
    init(format2 byte: UInt8) { self = "0x" + TextSyntax.hexByte(byte) }
}

/// The defaults both the printer and the parser track, updated after each
/// event the same way, so that what one leaves out the other fills in.
struct TextDefaults {
    var seq: UInt64 = 0
    var time: UInt64 = 0
    var tid: UInt32 = 0
    var containerFD: Int32? = nil
    var groupFD: Int32? = nil

    mutating func advance(past e: Event) {
        seq = e.seq &+ 1
        time = e.time
        tid = e.tid
        if case .open(let o) = e.body, case .ok(let fd)? = o.result, let fd32 = Int32(exactly: fd) {
            switch o.kind {
            case .container: containerFD = fd32
            case .group: groupFD = fd32
            default: break
            }
        }
    }
}
