/// The self-describing start of every `.vft` file.
///
/// On disk it is a zstd *skippable frame* (so `zstd -d` passes over it)
/// holding: the magic `vfiotrc\0`, format major and minor (u16 each), the
/// byte-order mark `0x1A2B3C4D` (written little-endian: a reader that sees it
/// swapped is reading a file from a big-endian writer), the page size, then
/// tagged fields (`tag u16 | length u32 | bytes`), then a CRC32C of all of it.
/// Unknown tags are kept and ignored, so fields can be added in a minor
/// version.
public struct TraceHeader: Equatable, Sendable {
    /// A reader refuses files with a newer major version and reads every
    /// older one.
    public static let currentMajor: UInt16 = 1
    /// Minor versions only add record types or header tags.
    public static let currentMinor: UInt16 = 0

    public var formatMajor: UInt16 = currentMajor
    public var formatMinor: UInt16 = currentMinor
    /// The recording host's page size (the base of `UserPointer.pageOffset`).
    public var pageSize: UInt32 = 4096
    /// `uname -r` of the kernel the trace was recorded on; empty for a
    /// hand-written scenario. `--profile auto` picks the engine profile from it.
    public var kernelRelease: String = ""
    /// Host name (or a description of the machine).
    public var host: String = ""
    /// The tool and version that wrote the file.
    public var tool: String = ""
    /// How the events were obtained: `scenario` (compiled from text),
    /// `ptrace`, `ptrace+pins`, `replay:<backend>`, …
    public var captureMode: String = ""
    /// Wall-clock creation time, nanoseconds since the Unix epoch (0: unknown).
    public var createdAt: UInt64 = 0
    /// Tagged fields this version does not know, kept as read.
    public var unknownFields: [UnknownField] = []

    public struct UnknownField: Equatable, Sendable {
        public var tag: UInt16
        public var bytes: [UInt8]
    }

    public init(kernelRelease: String = "", host: String = "", tool: String = "", captureMode: String = "",
                pageSize: UInt32 = 4096, createdAt: UInt64 = 0) {
        self.kernelRelease = kernelRelease
        self.host = host
        self.tool = tool
        self.captureMode = captureMode
        self.pageSize = pageSize
        self.createdAt = createdAt
    }

    static let magic: [UInt8] = Array("vfiotrc\0".utf8)
    static let byteOrderMark: UInt32 = 0x1A2B_3C4D
    /// Skippable-frame magic of the header (zstd reserves 0x184D2A50–5F).
    static let skippableMagic: UInt32 = 0x184D_2A56

    enum Tag: UInt16 {
        case kernelRelease = 1, host = 2, tool = 3, captureMode = 4, createdAt = 5
    }

    /// The whole skippable frame.
    func encoded() -> [UInt8] {
        var c = ByteWriter()
        c.bytes.append(contentsOf: Self.magic)
        c.u16(formatMajor)
        c.u16(formatMinor)
        c.u32(Self.byteOrderMark)
        c.u32(pageSize)
        func field(_ tag: UInt16, _ b: [UInt8]) {
            c.u16(tag)
            c.u32(UInt32(b.count))
            c.bytes.append(contentsOf: b)
        }
        field(Tag.kernelRelease.rawValue, Array(kernelRelease.utf8))
        field(Tag.host.rawValue, Array(host.utf8))
        field(Tag.tool.rawValue, Array(tool.utf8))
        field(Tag.captureMode.rawValue, Array(captureMode.utf8))
        var t = ByteWriter()
        t.u64(createdAt)
        field(Tag.createdAt.rawValue, t.bytes)
        for u in unknownFields { field(u.tag, u.bytes) }
        c.u32(CRC32C.checksum(c.bytes))
        var f = ByteWriter()
        f.u32(Self.skippableMagic)
        f.u32(UInt32(c.bytes.count))
        f.bytes.append(contentsOf: c.bytes)
        return f.bytes
    }

    /// Largest header accepted.
    static let maxContent = 1 << 20

    /// Parses the content of the header frame (after its 8-byte frame header).
    /// Offsets in errors are file offsets.
    private static func parseFields(_ raw: UnsafeRawBufferPointer) throws(DecodeError) -> TraceHeader {
        var h = TraceHeader()
        var r = ByteReader(raw, offset: 8)
        h.formatMajor = try r.u16()
        h.formatMinor = try r.u16()
        if h.formatMajor > currentMajor { return h }
        let bom = try r.u32()
        if bom == 0x4D3C_2B1A { throw .corrupt(at: 12, "written by a big-endian host; not supported") }
        guard bom == byteOrderMark else { throw .corrupt(at: 12, "bad byte-order mark") }
        h.pageSize = try r.u32()
        // The page size decides every bitmap's meaning: the format allows
        // only what a kernel can have (and the text form can say).
        guard h.pageSize != 0, h.pageSize & (h.pageSize - 1) == 0 else {
            throw .corrupt(at: 16, "page size \(h.pageSize) is not a power of two")
        }
        while !r.isAtEnd {
            let tag = try r.u16()
            let n = try r.u32()
            guard Int(n) <= r.remaining else { throw .truncated(at: r.offset) }
            let bytes = Array(UnsafeRawBufferPointer(rebasing: raw[r.offset..<r.offset + Int(n)]))
            try r.skip(Int(n))
            let s = String(decoding: bytes, as: UTF8.self)
            switch Tag(rawValue: tag) {
            case .kernelRelease: h.kernelRelease = s
            case .host: h.host = s
            case .tool: h.tool = s
            case .captureMode: h.captureMode = s
            case .createdAt:
                h.createdAt = bytes.count == 8
                    ? bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) } : 0
            case nil: h.unknownFields.append(UnknownField(tag: tag, bytes: bytes))
            }
        }
        return h
    }

    static func decode(content: [UInt8], fileOffset: Int) throws(TraceError) -> TraceHeader {
        guard content.count >= 4 + 20 else { throw .badHeader(offset: fileOffset, "header too short (\(content.count) bytes)") }
        let body = Array(content.dropLast(4))
        let stored = content.suffix(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
        guard Array(body.prefix(8)) == magic else { throw .badHeader(offset: fileOffset, "not a vfiotrace header (bad magic)") }
        let parsed: Result<TraceHeader, DecodeError> = body.withUnsafeBytes { raw in
            Result { () throws(DecodeError) -> TraceHeader in try parseFields(raw) }
        }
        let h: TraceHeader
        switch parsed {
        case .success(let v): h = v
        case .failure(let error):
            // A newer major version may have changed everything after the
            // version fields: report that first.
            if body.count >= 12 {
                let major = UInt16(body[8]) | UInt16(body[9]) << 8
                if major > currentMajor { throw .newerVersion(major: major, minor: UInt16(body[10]) | UInt16(body[11]) << 8) }
            }
            switch error {
            case .truncated(let at): throw .badHeader(offset: fileOffset + at, "header fields truncated")
            case .corrupt(let at, let why): throw .badHeader(offset: fileOffset + at, why)
            }
        }
        if h.formatMajor > currentMajor { throw .newerVersion(major: h.formatMajor, minor: h.formatMinor) }
        if h.formatMajor == 0 { throw .badHeader(offset: fileOffset + 8, "format major version 0") }
        guard CRC32C.checksum(body) == stored else {
            throw .badHeader(offset: fileOffset + body.count, "header checksum mismatch")
        }
        return h
    }
}
