/// Where each data frame sits and which events it holds, so a reader can
/// jump to event N by decompressing one frame.
///
/// Written at clean close as a zstd skippable frame at the very end of the
/// file (like zstd's seekable format, but with event ordinals): magic
/// `vftindex`, entry count, entries, CRC32C, then a footer of the content
/// length and `VFTX`, so a reader finds it from the last 8 bytes. A file
/// without one (a killed recorder) is indexed by scanning its frames.
public struct SeekIndex: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        /// File offset of the zstd frame.
        public var offset: UInt64
        public var compressedSize: UInt32
        public var contentSize: UInt32
        /// Ordinal (0-based position in the file) of the frame's first event.
        public var firstEvent: UInt64
        public var eventCount: UInt32
        /// CRC32C of the compressed frame bytes: catches flips that zstd
        /// itself ignores (the frame header's unused bit, a larger window).
        public var crc: UInt32

        public init(offset: UInt64, compressedSize: UInt32, contentSize: UInt32, firstEvent: UInt64, eventCount: UInt32,
                    crc: UInt32) {
            self.crc = crc
            self.offset = offset
            self.compressedSize = compressedSize
            self.contentSize = contentSize
            self.firstEvent = firstEvent
            self.eventCount = eventCount
        }
    }

    public var entries: [Entry] = []

    public init(entries: [Entry] = []) { self.entries = entries }

    public var eventCount: UInt64 { entries.last.map { $0.firstEvent + UInt64($0.eventCount) } ?? 0 }

    static let skippableMagic: UInt32 = 0x184D_2A57
    static let magic: [UInt8] = Array("vftindex".utf8)
    static let footerMagic: UInt32 = 0x5854_4656 // "VFTX"
    static let entryBytes = 32

    /// The entry holding event ordinal `n`.
    public func entry(containing n: UInt64) -> Entry? {
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].firstEvent + UInt64(entries[mid].eventCount) <= n { lo = mid + 1 } else { hi = mid }
        }
        return lo < entries.count && entries[lo].firstEvent <= n ? entries[lo] : nil
    }

    func encoded() -> [UInt8] {
        var c = ByteWriter(capacity: 16 + entries.count * Self.entryBytes)
        c.bytes.append(contentsOf: Self.magic)
        c.u32(UInt32(entries.count))
        for e in entries {
            c.u64(e.offset); c.u32(e.compressedSize); c.u32(e.contentSize); c.u64(e.firstEvent); c.u32(e.eventCount); c.u32(e.crc)
        }
        c.u32(CRC32C.checksum(c.bytes))
        c.u32(UInt32(c.bytes.count + 8))
        c.u32(Self.footerMagic)
        var f = ByteWriter()
        f.u32(Self.skippableMagic)
        f.u32(UInt32(c.bytes.count))
        f.bytes.append(contentsOf: c.bytes)
        return f.bytes
    }

    /// Reads the index at the end of `file`, or nil when there is none or it
    /// does not check out (the caller then scans).
    static func load(from file: TraceFile, dataStart: Int) -> (index: SeekIndex, offset: Int)? {
        guard file.size >= dataStart + 16,
              let footer = try? file.u32(at: file.size - 4), footer == footerMagic,
              let len = try? file.u32(at: file.size - 8) else { return nil }
        let contentLen = Int(len)
        let start = file.size - contentLen - 8
        guard contentLen >= 20, start >= dataStart,
              (try? file.u32(at: start)) == skippableMagic,
              (try? file.u32(at: start + 4)) == len,
              let content = try? file.read(at: start + 8, count: contentLen), content.count == contentLen,
              Array(content.prefix(8)) == Self.magic else { return nil }
        let body = Array(content[0..<(contentLen - 12)])
        let crc = content[(contentLen - 12)..<(contentLen - 8)].enumerated()
            .reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
        guard CRC32C.checksum(body) == crc else { return nil }
        return body.withUnsafeBytes { raw -> (SeekIndex, Int)? in
            var r = ByteReader(raw, offset: 8)
            guard let n = try? r.u32(), Int(n) * entryBytes == r.remaining else { return nil }
            var idx = SeekIndex()
            idx.entries.reserveCapacity(Int(n))
            var expectFirst: UInt64 = 0
            for _ in 0..<n {
                guard let o = try? r.u64(), let cs = try? r.u32(), let ct = try? r.u32(),
                      let fe = try? r.u64(), let ec = try? r.u32(), let crc = try? r.u32(),
                      fe == expectFirst, o >= UInt64(dataStart), o <= UInt64(start), UInt64(cs) <= UInt64(start) - o
                else { return nil }
                // Checked in UInt64 before anything becomes an Int: an index
                // with a correct CRC may still claim offsets of 2^63 or
                // event counts that overflow.
                let (next, overflow) = fe.addingReportingOverflow(UInt64(ec))
                guard !overflow else { return nil }
                expectFirst = next
                idx.entries.append(Entry(offset: o, compressedSize: cs, contentSize: ct, firstEvent: fe, eventCount: ec, crc: crc))
            }
            return (idx, start)
        }
    }
}
