/// One page of the kernel's trace ring buffer as `trace_pipe_raw` hands it
/// out, split into timestamped event records.
///
/// The page (kernel/trace/ring_buffer.c, described by tracefs's
/// `events/header_page`): a u64 timestamp that the first event's delta is
/// relative to, a `local_t commit` whose low bits are the bytes of data
/// and whose bits 31/30 say events were lost before this page (and that
/// their count is stored after the data), then the data. Each record
/// starts with a u32: `type_len` in bits 0–4, `time_delta` in bits 5–31.
/// type_len 1–28: a data record of type_len×4 bytes; 0: a data record
/// whose length is in the next u32; 29: padding (delta 0: the rest of the
/// page is empty); 30: a time extension (delta = next u32 << 27 | delta);
/// 31: an absolute timestamp (whose top 5 bits come from the current time).
public struct RingBufferPage: Sendable {
    public struct Record: Sendable, Equatable {
        /// Trace clock time (with `trace_clock` set to `mono`: CLOCK_MONOTONIC ns).
        public var time: UInt64
        /// The event's bytes, starting with its `common_type`.
        public var data: [UInt8]
    }

    /// Where the header fields sit; `events/header_page` states them.
    public struct Layout: Sendable, Equatable {
        public var commitOffset = 8
        public var commitSize = 8
        public var dataOffset = 16
        public init() {}

        /// Reads the `commit` and `data` offsets from `events/header_page`.
        public init(headerPage text: String) {
            let fields = TraceEventFormat.fields(in: text)
            if let c = fields["commit"] { commitOffset = c.offset; commitSize = c.size }
            if let d = fields["data"] { dataOffset = d.offset }
        }
    }

    public var records: [Record] = []
    /// Events the kernel lost before this page: nil none, 0 lost but not counted.
    public var missedBefore: UInt64?
    /// Set when the page's structure did not add up; records up to that point are kept.
    public var damage: String?

    static let missedEvents: UInt64 = 1 << 31
    static let missedStored: UInt64 = 1 << 30

    public init(_ b: [UInt8], layout: Layout = Layout()) {
        func u32(_ o: Int) -> UInt64 {
            UInt64(b[o]) | UInt64(b[o + 1]) << 8 | UInt64(b[o + 2]) << 16 | UInt64(b[o + 3]) << 24
        }
        func u64(_ o: Int) -> UInt64 { u32(o) | u32(o + 4) << 32 }
        guard b.count >= layout.dataOffset, layout.commitOffset + layout.commitSize <= b.count else {
            damage = "a page of \(b.count) bytes is shorter than its header"
            return
        }
        let commit = layout.commitSize >= 8 ? u64(layout.commitOffset) : u32(layout.commitOffset)
        let size = Int(commit & (Self.missedStored - 1))
        var end = layout.dataOffset + size
        if end > b.count {
            damage = "the page says \(size) bytes of data but \(b.count - layout.dataOffset) arrived"
            end = b.count
        }
        if commit & Self.missedEvents != 0 {
            missedBefore = 0
            if commit & Self.missedStored != 0, end + 8 <= b.count { missedBefore = u64(end) }
        }
        func broken(_ why: String) { damage = damage.map { $0 + "; " + why } ?? why }
        var time = u64(0)
        var o = layout.dataOffset
        while o + 4 <= end {
            let head = u32(o)
            let typeLen = head & 31
            let delta = head >> 5
            switch typeLen {
            case 29:
                // Padding, or a discarded event (delta != 0). Its delta is
                // not added, as the kernel's own reader does not
                // (rb_update_read_stamp); unfiltered probes discard nothing.
                if delta == 0 { return }
                guard o + 8 <= end else { broken("padding cut at \(o)"); return }
                o += 4 + Int(u32(o + 4))
            case 30:
                guard o + 8 <= end else { broken("time extension cut at \(o)"); return }
                time &+= u32(o + 4) << 27 | delta
                o += 8
            case 31:
                guard o + 8 <= end else { broken("timestamp cut at \(o)"); return }
                var abs = u32(o + 4) << 27 | delta
                let msb: UInt64 = 0xf8 << 56
                if time & msb != 0 {
                    abs |= time & msb
                    if abs < time { abs &+= 1 << 59 }
                }
                time = abs
                o += 8
            case 0:
                guard o + 8 <= end else { broken("record length cut at \(o)"); return }
                let length = Int(u32(o + 4))
                guard length >= 4, o + 4 + length <= end else { broken("record at \(o) of \(length) bytes runs past the data"); return }
                time &+= delta
                records.append(Record(time: time, data: Array(b[(o + 8)..<(o + 4 + length)])))
                o += 4 + length
            default:
                let length = Int(typeLen) * 4
                guard o + 4 + length <= end else { broken("record at \(o) of \(length) bytes runs past the data"); return }
                time &+= delta
                records.append(Record(time: time, data: Array(b[(o + 4)..<(o + 4 + length)])))
                o += 4 + length
            }
        }
    }
}

/// An event's `format` file in tracefs: its id and where each field sits.
public struct TraceEventFormat: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var offset: Int
        public var size: Int
        public var signed: Bool
    }

    public var id: UInt16
    public var fields: [String: Field]

    public init(id: UInt16, fields: [String: Field]) {
        self.id = id
        self.fields = fields
    }

    /// Parses `name:`, `ID:` and the `field:TYPE NAME; offset:N; size:N; signed:N;` lines.
    public init?(text: String) {
        guard let idLine = text.split(separator: "\n").first(where: { $0.hasPrefix("ID:") }),
              let id = UInt16(idLine.dropFirst(3).trimmingSpaces) else { return nil }
        self.id = id
        fields = Self.fields(in: text)
    }

    static func fields(in text: String) -> [String: Field] {
        var out: [String: Field] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ";").map { $0.trimmingSpaces }
            guard parts.count >= 3, parts[0].hasPrefix("field:") else { continue }
            var name = parts[0].split(separator: " ").last.map(String.init) ?? ""
            if let bracket = name.firstIndex(of: "[") { name = String(name[..<bracket]) }
            func value(_ key: String) -> Int? {
                parts.first { $0.hasPrefix(key + ":") }.flatMap { Int($0.dropFirst(key.count + 1)) }
            }
            guard let offset = value("offset"), let size = value("size") else { continue }
            out[name] = Field(offset: offset, size: size, signed: value("signed") == 1)
        }
        return out
    }

    /// The integer field `name` of a record's bytes, sign-extended when signed.
    public func value(_ name: String, in data: [UInt8]) -> Int64? {
        guard let f = fields[name], f.size >= 1, f.size <= 8, f.offset + f.size <= data.count else { return nil }
        var v: UInt64 = 0
        for i in 0..<f.size { v |= UInt64(data[f.offset + i]) << (8 * UInt64(i)) }
        if f.signed, f.size < 8, v & (1 << (UInt64(f.size) * 8 - 1)) != 0 {
            v |= ~UInt64(0) << (UInt64(f.size) * 8)
        }
        return Int64(bitPattern: v)
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
