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
    // Parsing state; the extensions in TextParser+*.swift read it.
    var d = TextDefaults()
    var sawEvent = false
    var lineNo = 0

    public init() {}

    /// Parses a whole text, calling `emit` for each event.
    public static func parse(_ text: String, emit: (Event) throws -> Void) throws -> TraceHeader {
        var p = TextParser()
        var n = 0
        // Split as LineSource splits a file: at every newline, CRLF too
        // (Swift takes "\r\n" for one Character).
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
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
        guard k < tokens.count else {
            // Nothing before the '->' (a line "-> ok"), or only a prefix.
            guard let last = tokens.last else { throw fail(outcome.first?.column ?? 1, "expected an event before '->'") }
            throw fail(last.column, "expected an event after the prefix")
        }
        let verb = tokens[k]
        var args = Args(tokens: Array(tokens[(k + 1)...]), parser: self, verb: String(verb.text), verbColumn: verb.column)
        var out = Outcome(tokens: outcome, parser: self)
        let body = try parseBody(verb, &args, &out)
        try args.finish()
        try out.finish()
        // A sequence number may go backwards (`#N` below the last): the
        // binary format stores it as a delta that can be negative, a later
        // frame may restart it, and `cat | compile` must give the trace back.
        let e = Event(seq: seq, time: time, tid: tid, body)
        sawEvent = true
        d.advance(past: e)
        return e
    }

    mutating func headerLine(_ s: Substring, column: Int) throws(TextError) {
        if sawEvent { throw fail(column, "header lines (!…) must come before the first event") }
        let key = s.prefix { $0 != " " }
        var value = String(s.dropFirst(key.count).drop { $0 == " " })
        // String values may be quoted (the printer quotes what is not plain).
        if ["kernel", "host", "tool", "mode"].contains(key), value.first == "\"" {
            value = try unquote(Substring(value), column: column + key.count + 1)
        }
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
}
