import Trace

/// The caller's bitmap buffer as the kernel sees it during one GET_BITMAP or
/// UNMAP_DMA: its bytes (starting from the recorded prior contents) and how
/// far it can be read and written before `copy_{from,to}_user` faults.
///
/// The kernel only ever touches the words that overlap a mapping
/// (vfio-semantics §2.4 point 1), so words in holes keep whatever was there.
/// The buffer is stored the same way: only the 64 KiB chunks a mapping
/// touched are expanded, the rest stays the caller's prior contents in run
/// form. A query over a sparse range therefore costs memory for the mapped
/// pages, not for the range (up to the 256 MiB the kernel allows).
public struct UserBitmapBuffer: Sendable {
    /// The caller's `bitmap.size` in bytes.
    public let size: UInt64
    /// Bytes from the start that `copy_from_user` can read.
    public let readable: UInt64
    /// Bytes from the start that `copy_to_user` can write.
    public let writable: UInt64
    private let prior: BitmapBytes?
    /// Expanded chunks by index, as little-endian words.
    private var chunks: [Int: [UInt64]] = [:]

    static let chunkBytes: UInt64 = 1 << 16
    static let chunkWords = Int(chunkBytes / 8)

    /// A buffer of `size` bytes holding `prior` (zero when nil), accessible
    /// as `pointer` says.
    public init(size: UInt64, prior: BitmapBytes?, pointer: UserPointer) {
        self.size = size
        self.prior = prior.flatMap { $0.isAllZero ? nil : $0 }
        let limit = pointer.accessibleBytes ?? size
        switch pointer.pointerClass {
        case .valid: readable = min(size, limit); writable = min(size, limit)
        case .readOnly: readable = min(size, limit); writable = 0
        case .null, .unmapped, .kernel: readable = 0; writable = 0
        }
    }

    /// The chunk holding byte `offset`, expanded from the prior contents on
    /// first use.
    private mutating func withChunk<R>(_ index: Int, _ body: (inout [UInt64]) -> R) -> R {
        if chunks[index] == nil {
            var words = [UInt64](repeating: 0, count: Self.chunkWords)
            if let prior {
                let base = UInt64(index) * Self.chunkBytes
                words.withUnsafeMutableBytes { raw in
                    prior.forEachPiece(in: base..<(base + Self.chunkBytes)) { at, piece in
                        let o = Int(at - base)
                        switch piece {
                        case .fill(let b, let n): raw.baseAddress!.advanced(by: o).initializeMemory(as: UInt8.self, repeating: b, count: Int(n))
                        case .literal(let l): l.withUnsafeBytes { raw.baseAddress!.advanced(by: o).copyMemory(from: $0.baseAddress!, byteCount: l.count) }
                        }
                    }
                }
            }
            chunks[index] = words
        }
        return body(&chunks[index]!)
    }

    /// `copy_from_user` of one u64 at byte `offset` (a multiple of 8): nil
    /// when it faults.
    func readWord(atByte offset: UInt64) -> UInt64? {
        guard offset + 8 <= readable else { return nil }
        let c = Int(offset / Self.chunkBytes), w = Int(offset % Self.chunkBytes / 8)
        if let chunk = chunks[c] { return UInt64(littleEndian: chunk[w]) }
        guard let prior else { return 0 }
        var v: UInt64 = 0
        for i in 0..<UInt64(8) { v |= UInt64(prior.byte(at: offset + i)) << (8 * i) }
        return v
    }

    /// `copy_to_user` of `count` bytes of `words` at byte `offset` (a
    /// multiple of 8). Bytes up to the fault are written, as `copy_to_user`
    /// leaves them; returns false when it faulted. [analysis: the exact
    /// number of bytes a faulting copy_to_user writes depends on the
    /// architecture's copy routine; to be checked on the lab kernels.]
    mutating func write(words: UnsafeBufferPointer<UInt64>, count: UInt64, atByte offset: UInt64) -> Bool {
        let end = min(offset + count, writable)
        var at = offset
        var src = 0
        while at < end {
            let c = Int(at / Self.chunkBytes), w = Int(at % Self.chunkBytes / 8)
            let fullWords = Int(min(UInt64(Self.chunkWords - w), (end - at) / 8))
            withChunk(c) { chunk in
                chunk.withUnsafeMutableBufferPointer { dst in
                    if fullWords > 0 {
                        for k in 0..<fullWords { dst[w + k] = words[src + k].littleEndian }
                    }
                    // A trailing partial word (a fault mid-word): low bytes only.
                    let rest = (end - at) - UInt64(fullWords) * 8
                    if fullWords < Self.chunkWords - w && rest > 0 && rest < 8 {
                        let mask: UInt64 = (1 << (rest * 8)) - 1
                        let v = words[src + fullWords].littleEndian
                        dst[w + fullWords] = (dst[w + fullWords] & ~mask) | (v & mask)
                    }
                }
            }
            let advanced = max(UInt64(fullWords) * 8, min(8, end - at))
            at += advanced
            src += Int(advanced / 8)
            if advanced % 8 != 0 { break }
        }
        return offset + count <= writable
    }

    /// The buffer's contents as a trace stores them.
    public var contents: BitmapBytes {
        var b = BitmapBytes.Builder()
        var at: UInt64 = 0
        for c in chunks.keys.sorted() {
            let base = UInt64(c) * Self.chunkBytes
            guard base < size else { break }
            if base > at { append(prior, at..<base, to: &b) }
            let n = min(Self.chunkBytes, size - base)
            chunks[c]!.withUnsafeBufferPointer { words in
                b.append(words: UnsafeBufferPointer(rebasing: words[0..<Int(n / 8)]))
                if n % 8 != 0 {
                    let last = words[Int(n / 8)].littleEndian
                    for i in 0..<(n % 8) { b.append(UInt8(truncatingIfNeeded: last >> (8 * i)), count: 1) }
                }
            }
            at = base + n
        }
        if at < size { append(prior, at..<size, to: &b) }
        return b.build()
    }

    private func append(_ prior: BitmapBytes?, _ range: Range<UInt64>, to b: inout BitmapBytes.Builder) {
        var filled = range.lowerBound
        prior?.forEachPiece(in: range) { at, piece in
            switch piece {
            case .fill(let v, let n): b.append(v, count: n)
            case .literal(let l): b.append(contentsOf: l)
            }
            filled = at + piece.byteCount
        }
        if filled < range.upperBound { b.append(0, count: range.upperBound - filled) }
    }
}
