/// Little-endian, LEB128-varint byte coding used by every record of the
/// binary format. Everything is written little-endian regardless of host.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    /// Unsigned LEB128.
    @inline(__always)
    public mutating func varint(_ v: UInt64) {
        if v < 0x80 { bytes.append(UInt8(truncatingIfNeeded: v)); return }
        longVarint(v)
    }

    /// A varint of two bytes or more, built in registers and appended at once.
    @inline(never)
    private mutating func longVarint(_ v: UInt64) {
        var v = v
        var low: UInt64 = 0, high: UInt16 = 0
        var n = 0
        while v >= 0x80 {
            let b = (v & 0x7F) | 0x80
            if n < 8 { low |= b << (8 * UInt64(n)) } else { high |= UInt16(b) << (8 * UInt16(n - 8)) }
            n += 1
            v >>= 7
        }
        if n < 8 { low |= v << (8 * UInt64(n)) } else { high |= UInt16(v) << (8 * UInt16(n - 8)) }
        n += 1
        var packed = (low.littleEndian, high.littleEndian)
        withUnsafeBytes(of: &packed) { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }

    /// Zig-zag signed varint.
    public mutating func svarint(_ v: Int64) {
        varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    /// Fills in the one-byte placeholder at `at` with the length, as a
    /// varint, of everything written after it, widening it (moving the
    /// bytes after it) when the length needs more than one byte.
    public mutating func patchLength(at: Int) {
        let length = UInt64(bytes.count - at - 1)
        if length < 0x80 { bytes[at] = UInt8(length); return }
        var encoded = ByteWriter(capacity: 10)
        encoded.varint(length)
        bytes.replaceSubrange(at...at, with: encoded.bytes)
    }

    public mutating func blob<C: Collection>(_ b: C) where C.Element == UInt8 {
        varint(UInt64(b.count))
        bytes.append(contentsOf: b)
    }

    public mutating func string(_ s: String) { blob(Array(s.utf8)) }

    public mutating func bool(_ b: Bool) { bytes.append(b ? 1 : 0) }
}

/// Why decoding stopped: the input ended early, or it is not what the
/// format allows. Offsets are relative to the buffer being decoded.
public enum DecodeError: Error, Equatable, Sendable {
    case truncated(at: Int)
    case corrupt(at: Int, String)
}

public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    private mutating func need(_ n: Int) throws(DecodeError) {
        if n > remaining { throw .truncated(at: offset) }
    }

    public mutating func u8() throws(DecodeError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws(DecodeError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    public mutating func u32() throws(DecodeError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * i) }
        offset += 4
        return v
    }

    public mutating func u64() throws(DecodeError) -> UInt64 {
        try need(8)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * i) }
        offset += 8
        return v
    }

    @inline(__always)
    public mutating func varint() throws(DecodeError) -> UInt64 {
        // One byte: the common case (deltas, group numbers, counts).
        if offset < bytes.count {
            let b = bytes[offset]
            if b < 0x80 { offset += 1; return UInt64(b) }
        }
        return try longVarint()
    }

    @inline(never)
    private mutating func longVarint() throws(DecodeError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            try need(1)
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 { throw .corrupt(at: start, "varint overflows 64 bits") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            if shift > 63 { throw .corrupt(at: start, "varint longer than 10 bytes") }
        }
    }

    public mutating func svarint() throws(DecodeError) -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    public mutating func u32varint() throws(DecodeError) -> UInt32 {
        let at = offset
        let v = try varint()
        guard let r = UInt32(exactly: v) else { throw .corrupt(at: at, "value \(v) does not fit 32 bits") }
        return r
    }

    public mutating func i32varint() throws(DecodeError) -> Int32 {
        let at = offset
        let v = try svarint()
        guard let r = Int32(exactly: v) else { throw .corrupt(at: at, "value \(v) does not fit 32 bits") }
        return r
    }

    /// A length-prefixed byte string no longer than `limit`.
    public mutating func blob(limit: Int = 1 << 30) throws(DecodeError) -> [UInt8] {
        let at = offset
        let n = try varint()
        guard n <= UInt64(limit) else { throw .corrupt(at: at, "length \(n) exceeds limit \(limit)") }
        try need(Int(n))
        defer { offset += Int(n) }
        return Array(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(n)]))
    }

    public mutating func string(limit: Int = 1 << 20) throws(DecodeError) -> String {
        let at = offset
        let b = try blob(limit: limit)
        guard let s = String(validating: b, as: UTF8.self) else { throw .corrupt(at: at, "invalid UTF-8") }
        return s
    }

    public mutating func bool() throws(DecodeError) -> Bool {
        let at = offset
        switch try u8() {
        case 0: return false
        case 1: return true
        case let b: throw .corrupt(at: at, "boolean byte \(b)")
        }
    }

    public mutating func skip(_ n: Int) throws(DecodeError) {
        try need(n)
        offset += n
    }
}
