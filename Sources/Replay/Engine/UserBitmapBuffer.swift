import Trace

/// The caller's bitmap buffer as the kernel sees it during one GET_BITMAP or
/// UNMAP_DMA: its bytes (starting from the recorded prior contents) and how
/// far it can be read and written before `copy_{from,to}_user` faults.
///
/// The kernel only ever touches the words that overlap a mapping
/// (vfio-semantics §2.4 point 1), so words in holes keep whatever was there.
public struct UserBitmapBuffer: Sendable {
    /// The buffer's bytes; the length is the caller's `bitmap.size` (capped
    /// at what a trace keeps).
    public private(set) var bytes: [UInt8]
    /// Bytes from the start that `copy_from_user` can read.
    public let readable: Int
    /// Bytes from the start that `copy_to_user` can write.
    public let writable: Int

    /// A buffer of `size` bytes holding `prior` (zero when nil), accessible
    /// as `pointer` says.
    public init(size: Int, prior: BitmapBytes?, pointer: UserPointer) {
        var b = prior?.materialize() ?? []
        if b.count < size { b.append(contentsOf: repeatElement(0, count: size - b.count)) }
        if b.count > size { b.removeSubrange(size...) }
        bytes = b
        let limit = pointer.accessibleBytes.map { Int(clamping: $0) } ?? size
        switch pointer.pointerClass {
        case .valid: readable = min(size, limit); writable = min(size, limit)
        case .readOnly: readable = min(size, limit); writable = 0
        case .null, .unmapped, .kernel: readable = 0; writable = 0
        }
    }

    /// `copy_from_user` of one u64 at byte `offset`: nil when it faults.
    func readWord(atByte offset: Int) -> UInt64? {
        guard offset >= 0, offset + 8 <= readable else { return nil }
        var w: UInt64 = 0
        for i in 0..<8 { w |= UInt64(bytes[offset + i]) << (8 * i) }
        return w
    }

    /// `copy_to_user` of `count` bytes of `words` at byte `offset`. Bytes up
    /// to the fault are written, as `copy_to_user` leaves them; returns
    /// false when it faulted. [analysis: the exact number of bytes a faulting
    /// copy_to_user writes depends on the architecture's copy routine; to be
    /// checked on the lab kernels.]
    mutating func write(words: UnsafeBufferPointer<UInt64>, count: Int, atByte offset: Int) -> Bool {
        let end = min(offset + count, writable)
        var i = offset
        while i < end {
            let k = i - offset
            bytes[i] = UInt8(truncatingIfNeeded: words[k / 8] >> (8 * UInt64(k % 8)))
            i += 1
        }
        return offset + count <= writable
    }

    /// The buffer's contents as a trace stores them.
    public var contents: BitmapBytes { BitmapBytes(bytes) }
}
