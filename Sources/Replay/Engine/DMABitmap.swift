/// The dirty bitmap of one `vfio_dma`, in the kernel's layout: bit `n` is
/// page `n` of the mapping (zero-based per mapping, never by absolute IOVA),
/// `UInt64` words LSB first, plus the one extra word the kernel allocates
/// (`DIRTY_BITMAP_BYTES(npages) + sizeof(u64)`, vfio-semantics §2.2) as
/// room for the shift in `update_user_bitmap`. Bits shifted into that room
/// are not cleared by the kernel's `bitmap_clear(…, 0, nbits)` after a
/// query, so they are kept here too (rule 44).
public struct DMABitmap: Sendable, Equatable {
    /// Pages of the mapping (`dma->size >> pgshift`) when it was allocated.
    public let nbits: UInt64
    /// `ceil(nbits / 64) + 1` words.
    public private(set) var words: [UInt64]

    public init(nbits: UInt64) {
        self.nbits = nbits
        words = [UInt64](repeating: 0, count: Int((nbits + 63) / 64) + 1)
    }

    /// Makes room for `count` bits plus the scratch word. The kernel never
    /// reallocates: when the smallest IOMMU page shrinks while tracking
    /// (rule 45) it writes past its allocation; the engine grows instead and
    /// reports a hazard.
    mutating func ensureCapacity(bits count: UInt64) {
        let need = Int((count + 63) / 64) + 1
        if need > words.count { words.append(contentsOf: repeatElement(0, count: need - words.count)) }
    }

    public func test(_ bit: UInt64) -> Bool {
        words[Int(bit / 64)] >> (bit % 64) & 1 != 0
    }

    /// `bitmap_set(bitmap, start, count)`: word at a time.
    public mutating func set(_ start: UInt64, count: UInt64) {
        forEachWord(start, count) { words[$0] |= $1 }
    }

    /// `bitmap_clear(bitmap, start, count)`.
    public mutating func clear(_ start: UInt64, count: UInt64) {
        forEachWord(start, count) { words[$0] &= ~$1 }
    }

    /// Calls `body(wordIndex, mask)` for each word that bits
    /// `[start, start + count)` touch, with the mask of those bits.
    private func forEachWord(_ start: UInt64, _ count: UInt64, _ body: (Int, UInt64) -> Void) {
        var bit = start
        let end = start + count
        while bit < end {
            let lo = bit % 64
            let n = min(64 - lo, end - bit)
            body(Int(bit / 64), n == 64 ? ~0 : ((1 << n) - 1) << lo)
            bit += n
        }
    }

    /// Linux's `__bitmap_shift_left(dst, src, shift, nbits)` in place for
    /// `shift < 64`: words `[0, BITS_TO_LONGS(nbits))` move up by `shift`
    /// bits, the last word is not masked.
    mutating func shiftLeft(_ shift: UInt64, nbits total: UInt64) {
        precondition(shift > 0 && shift < 64)
        let lim = Int((total + 63) / 64)
        var k = lim - 1
        while k >= 0 {
            let lower = k > 0 ? words[k - 1] >> (64 - shift) : 0
            words[k] = (words[k] << shift) | lower
            k -= 1
        }
    }

    /// `update_user_bitmap()` (5.8+, vfio-semantics §2.4): writes this
    /// mapping's bits into the caller's buffer at the mapping's page offset
    /// from `baseIOVA`, the way the kernel does it, including its odd parts:
    ///
    /// - `allDirty` (non-pinned scope and `iommu_mapped`) sets every bit first;
    /// - when the offset is not a multiple of 64, the bitmap is shifted in
    ///   place (into the scratch word) and the caller's first word is read
    ///   back and ORed in *as a whole word* (`__bitmap_or` works in whole
    ///   words: the caller's bits inside the mapping's first word survive
    ///   too, not only those below its start — [analysis], to be confirmed
    ///   on a real kernel);
    /// - `DIRTY_BITMAP_BYTES(nbits + shift)` bytes are copied out, so bits past
    ///   the mapping's end in its last word are overwritten with whatever the
    ///   scratch holds.
    ///
    /// The shift is left in this bitmap, as in the kernel; the caller clears
    /// `[0, nbits)` and repopulates afterwards.
    ///
    /// `nbits` is `dma->size >> pgshift` at the time of the call, which
    /// differs from the allocation when the page size changed (rule 45).
    ///
    /// - Returns: false on a fault (EFAULT).
    public mutating func updateUserBitmap(_ user: inout UserBitmapBuffer, pageOffset bitOffset: UInt64,
                                          allDirty: Bool, nbits: UInt64? = nil) -> Bool {
        let nbits = nbits ?? self.nbits
        if allDirty { set(0, count: nbits) }
        let copyOffset = bitOffset / 64 * 8
        let shift = bitOffset % 64
        if shift != 0 {
            shiftLeft(shift, nbits: nbits + shift)
            guard let leftover = user.readWord(atByte: copyOffset) else { return false }
            words[0] |= leftover
        }
        let bytes = (nbits + shift + 63) / 64 * 8
        return words.withUnsafeBufferPointer { user.write(words: $0, count: bytes, atByte: copyOffset) }
    }
}
