/// The dirty bitmap of one `vfio_dma`, in the kernel's layout: bit `n` is
/// page `n` of the mapping (zero-based per mapping, never by absolute IOVA),
/// `UInt64` words LSB first, plus the one extra word the kernel allocates
/// (`DIRTY_BITMAP_BYTES(npages) + sizeof(u64)`, `docs/kernel-rules.md#bitmap-allocation`) as
/// room for the shift in `update_user_bitmap`. Bits shifted into that room
/// are not cleared by the kernel's `bitmap_clear(…, 0, nbits)` after a
/// query, so they are kept here too (rule `bitmap.scratch-residue`; the real kernels show them,
/// including leftover words ORed in by earlier queries: `corpora/iommu-spans.vfs`).
///
/// The words are stored in 64 KiB blocks, and a block whose words are all 0
/// or all 1 is kept as that one value. Every operation gives the same words
/// as the kernel's flat array; the blocks only make the common cases cheap:
/// an IOMMU-backed 8 TiB mapping set all-dirty and copied out, a query's
/// clear-on-read, a mostly clean bitmap. A block that was written whole is
/// handed to the caller's buffer without a copy (copy-on-write sharing).
public struct DMABitmap: Sendable {
    /// Pages of the mapping (`dma->size >> pgshift`) when it was allocated.
    public let nbits: UInt64
    /// Words in the kernel's allocation: `ceil(nbits / 64) + 1`.
    public private(set) var wordCount: Int
    /// Per block: its words, or empty when every word equals `fills[b]`.
    private var blocks: [[UInt64]]
    /// Per block: the value of every word while `blocks[b]` is empty (0 or ~0).
    private var fills: [UInt64]

    /// Words per block: the same as a user buffer chunk, so that aligned
    /// copies share storage.
    static let blockWords = UserBitmapBuffer.chunkWords

    public init(nbits: UInt64) {
        self.nbits = nbits
        wordCount = Int((nbits + 63) / 64) + 1
        let n = (wordCount + Self.blockWords - 1) / Self.blockWords
        blocks = [[UInt64]](repeating: [], count: n)
        fills = [UInt64](repeating: 0, count: n)
    }

    /// Words in block `b`.
    private func length(of b: Int) -> Int { min(Self.blockWords, wordCount - b * Self.blockWords) }

    /// Word `k` of the flat array.
    func word(_ k: Int) -> UInt64 {
        let b = k / Self.blockWords
        return blocks[b].isEmpty ? fills[b] : blocks[b][k % Self.blockWords]
    }

    /// Block `b` as a fill value, when it is one.
    private func fill(of b: Int) -> UInt64? { blocks[b].isEmpty ? fills[b] : nil }

    /// Makes room for `count` bits plus the scratch word. The kernel never
    /// reallocates: when the smallest IOMMU page shrinks while tracking
    /// (`docs/kernel-rules.md#pgsize-bitmap`) it writes past its allocation; the engine grows instead and
    /// reports a hazard.
    mutating func ensureCapacity(bits count: UInt64) {
        let need = Int((count + 63) / 64) + 1
        guard need > wordCount else { return }
        let flat = flatWords + [UInt64](repeating: 0, count: need - wordCount)
        wordCount = need
        blocks = stride(from: 0, to: need, by: Self.blockWords).map { Array(flat[$0..<min(need, $0 + Self.blockWords)]) }
        fills = [UInt64](repeating: 0, count: blocks.count)
    }

    /// Block `b` as words, expanded from a fill if need be.
    private mutating func expand(_ b: Int) {
        if blocks[b].isEmpty { blocks[b] = [UInt64](repeating: fills[b], count: length(of: b)) }
    }

    /// Sets block `b` to `value` in every word.
    private mutating func setFill(_ b: Int, _ value: UInt64) {
        blocks[b] = []
        fills[b] = value
    }

    /// Applies `op(word, mask)` to the words that bits `[start, start +
    /// count)` touch; whole blocks become `.fill(whole)` in one step.
    private mutating func apply(_ start: UInt64, _ count: UInt64, whole: UInt64, _ op: (UInt64, UInt64) -> UInt64) {
        var bit = start
        let end = start + count
        let blockBits = UInt64(Self.blockWords) * 64
        while bit < end {
            let b = Int(bit / blockBits)
            let blockStart = UInt64(b) * blockBits
            let blockEnd = blockStart + UInt64(length(of: b)) * 64
            if bit == blockStart && end >= blockEnd {
                setFill(b, whole)
                bit = blockEnd
                continue
            }
            if fill(of: b) == whole { bit = min(end, blockEnd); continue }
            expand(b)
            let stop = min(end, blockEnd)
            while bit < stop {
                let lo = bit % 64
                let n = min(64 - lo, stop - bit)
                let k = Int((bit - blockStart) / 64)
                blocks[b][k] = op(blocks[b][k], n == 64 ? ~0 : ((1 << n) - 1) << lo)
                bit += n
            }
        }
    }

    /// Sets one bit (pins and repopulation), without the range walk.
    mutating func setBit(_ bit: UInt64) {
        let k = Int(bit / 64), b = k / Self.blockWords
        if blocks[b].isEmpty {
            if fills[b] == ~0 { return }
            expand(b)
        }
        blocks[b][k % Self.blockWords] |= 1 << (bit % 64)
    }

    /// Clears one bit.
    mutating func clearBit(_ bit: UInt64) {
        let k = Int(bit / 64), b = k / Self.blockWords
        if blocks[b].isEmpty {
            if fills[b] == 0 { return }
            expand(b)
        }
        blocks[b][k % Self.blockWords] &= ~(1 << (bit % 64))
    }

    /// ORs `other` into this bitmap word by word (word k into word k), as
    /// far as both reach. Blocks of `other` that are all 0 cost nothing.
    mutating func formUnion(_ other: DMABitmap) {
        for b in 0..<min(blocks.count, other.blocks.count) {
            let count = min(length(of: b), other.length(of: b))
            if other.blocks[b].isEmpty {
                let f = other.fills[b]
                if f == 0 || fill(of: b) == ~0 { continue }
                if f == ~0 && count == length(of: b) { setFill(b, ~0); continue }
                expand(b)
                blocks[b].withUnsafeMutableBufferPointer { w in for i in 0..<count { w[i] |= f } }
                continue
            }
            if fill(of: b) == ~0 { continue }
            expand(b)
            other.blocks[b].withUnsafeBufferPointer { o in
                blocks[b].withUnsafeMutableBufferPointer { w in for i in 0..<count { w[i] |= o[i] } }
            }
        }
    }

    /// Calls `body` with the number of every set bit below `nbits`, in order.
    func forEachSetBit(_ body: (UInt64) -> Void) {
        for b in 0..<blocks.count {
            let first = UInt64(b * Self.blockWords)
            for i in 0..<length(of: b) {
                var w = blocks[b].isEmpty ? fills[b] : blocks[b][i]
                while w != 0 {
                    let bit = (first + UInt64(i)) * 64 + UInt64(w.trailingZeroBitCount)
                    if bit >= nbits { return }
                    body(bit)
                    w &= w - 1
                }
            }
        }
    }

    /// `bitmap_set(bitmap, start, count)`.
    public mutating func set(_ start: UInt64, count: UInt64) {
        apply(start, count, whole: ~0) { $0 | $1 }
    }

    /// `bitmap_clear(bitmap, start, count)`.
    public mutating func clear(_ start: UInt64, count: UInt64) {
        apply(start, count, whole: 0) { $0 & ~$1 }
    }

    /// Linux's `__bitmap_shift_left(dst, src, shift, nbits)` in place for
    /// `shift < 64`: words `[0, BITS_TO_LONGS(nbits))` move up by `shift`
    /// bits, the last word is not masked. A block of all-0 or all-1 words
    /// whose carry-in word has the same value is unchanged by the shift.
    mutating func shiftLeft(_ shift: UInt64, nbits total: UInt64) {
        precondition(shift > 0 && shift < 64)
        let lim = Int((total + 63) / 64)
        guard lim > 0 else { return }
        var b = (lim - 1) / Self.blockWords
        while b >= 0 {
            let first = b * Self.blockWords
            let last = min(lim, first + length(of: b)) - 1
            let carryIn = first > 0 ? word(first - 1) : 0
            if let v = fill(of: b), v == carryIn, last == first + length(of: b) - 1 {
                b -= 1
                continue
            }
            expand(b)
            blocks[b].withUnsafeMutableBufferPointer { w in
                var k = last - first
                while k >= 0 {
                    let lower = k > 0 ? w[k - 1] >> (64 - shift) : carryIn >> (64 - shift)
                    w[k] = (w[k] << shift) | lower
                    k -= 1
                }
            }
            b -= 1
        }
    }

    /// ORs `value` into word 0 (the leftover of `update_user_bitmap`).
    private mutating func orIntoFirstWord(_ value: UInt64) {
        guard value != 0, fill(of: 0) != ~0 else { return }
        expand(0)
        blocks[0][0] |= value
    }

    /// `copy_to_user(buffer + byteOffset, bitmap, count)`: the first `count`
    /// bytes of the flat array. Returns false on a fault.
    func copyOut(_ count: UInt64, to user: inout UserBitmapBuffer, atByte byteOffset: UInt64) -> Bool {
        var done: UInt64 = 0
        var b = 0
        while done < count {
            let n = min(count - done, UInt64(length(of: b)) * 8)
            let ok = blocks[b].isEmpty ? user.write(fill: fills[b], count: n, atByte: byteOffset + done)
                : user.write(block: blocks[b], count: n, atByte: byteOffset + done)
            guard ok else { return false }
            done += n
            b += 1
        }
        return true
    }

    /// `update_user_bitmap()` (5.8+, `docs/kernel-rules.md#update-user-bitmap`): writes this
    /// mapping's bits into the caller's buffer at the mapping's page offset
    /// from `baseIOVA`, the way the kernel does it, including its odd parts:
    ///
    /// - `allDirty` (non-pinned scope and `iommu_mapped`) sets every bit first;
    /// - when the offset is not a multiple of 64, the bitmap is shifted in
    ///   place (into the scratch word) and the caller's first word is read
    ///   back and ORed in *as a whole word* (`__bitmap_or` works in whole
    ///   words: the caller's bits inside the mapping's first word survive
    ///   too, not only those below its start, as the notes first had it;
    ///   confirmed on Debian 6.1 and 6.12, `corpora/lab-probes.vfs`,
    ///   rule `bitmap.leftover-whole-word`, `docs/kernel-rules.md#leftover-or`);
    /// - `DIRTY_BITMAP_BYTES(nbits + shift)` bytes are copied out, so bits past
    ///   the mapping's end in its last word are overwritten with whatever the
    ///   scratch holds.
    ///
    /// The shift is left in this bitmap, as in the kernel; the caller clears
    /// `[0, nbits)` and repopulates afterwards.
    ///
    /// `nbits` is `dma->size >> pgshift` at the time of the call, which
    /// differs from the allocation when the page size changed
    /// (`docs/kernel-rules.md#pgsize-bitmap`).
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
            orIntoFirstWord(leftover)
        }
        return copyOut((nbits + shift + 63) / 64 * 8, to: &user, atByte: copyOffset)
    }

    /// The flat words, for tests.
    var flatWords: [UInt64] { (0..<wordCount).map(word) }
}
