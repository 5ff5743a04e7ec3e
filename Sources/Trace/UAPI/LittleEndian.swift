/// Little-endian fields of a uapi struct in a byte buffer. Reads past the
/// end give 0 (a short buffer is the caller's `argsz`, and the kernel never
/// wrote past it); writes past the end are dropped.
extension Array where Element == UInt8 {
    public func le16(at o: Int) -> UInt16 {
        guard o >= 0, o + 2 <= count else { return 0 }
        return UInt16(self[o]) | UInt16(self[o + 1]) << 8
    }

    public func le32(at o: Int) -> UInt32 {
        guard o >= 0, o + 4 <= count else { return 0 }
        return UInt32(le16(at: o)) | UInt32(le16(at: o + 2)) << 16
    }

    public func le64(at o: Int) -> UInt64 {
        guard o >= 0, o + 8 <= count else { return 0 }
        return UInt64(le32(at: o)) | UInt64(le32(at: o + 4)) << 32
    }

    public mutating func putLE32(_ v: UInt32, at o: Int) {
        guard o >= 0, o + 4 <= count else { return }
        for i in 0..<4 { self[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    public mutating func putLE64(_ v: UInt64, at o: Int) {
        guard o >= 0, o + 8 <= count else { return }
        for i in 0..<8 { self[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }
}
