import Trace

/// The caller's bitmap buffer as the kernel sees it during one GET_BITMAP or
/// UNMAP_DMA: its bytes (starting from the recorded prior contents) and how
/// far it can be read and written before `copy_{from,to}_user` faults.
///
/// The kernel only ever touches the words that overlap a mapping
/// (`docs/kernel-rules.md#holes`), so words in holes keep whatever was there.
/// The buffer is stored the same way: only the 64 KiB chunks a mapping
/// touched are expanded, the rest stays the caller's prior contents in run
/// form, and a chunk written with one repeated word stays that word. A
/// query over a sparse range therefore costs memory for the mapped pages,
/// not for the range (up to the 256 MiB the kernel allows), and an
/// all-dirty 8 TiB query costs a few thousand chunk records.
public struct UserBitmapBuffer: Sendable {
    /// The caller's `bitmap.size` in bytes.
    public let size: UInt64
    /// Bytes from the start that `copy_from_user` can read.
    public let readable: UInt64
    /// Bytes from the start that `copy_to_user` can write.
    public let writable: UInt64
    private let prior: BitmapBytes?
    /// Chunks written so far, by index; the others hold the prior contents.
    private var chunks: [Int: Chunk] = [:]

    enum Chunk: Sendable {
        /// Every word is this value.
        case fill(UInt64)
        /// Little-endian words.
        case words([UInt64])
    }

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

    /// Chunk `index` as it stands: written, or the prior contents.
    private func current(_ index: Int) -> Chunk {
        if let c = chunks[index] { return c }
        guard let prior else { return .fill(0) }
        var words = [UInt64](repeating: 0, count: Self.chunkWords)
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
        return .words(words)
    }

    /// `copy_from_user` of one u64 at byte `offset` (a multiple of 8): nil
    /// when it faults.
    func readWord(atByte offset: UInt64) -> UInt64? {
        guard offset + 8 <= readable else { return nil }
        let c = Int(offset / Self.chunkBytes), w = Int(offset % Self.chunkBytes / 8)
        switch chunks[c] {
        case .fill(let v)?: return v
        case .words(let words)?: return words[w]
        case nil:
            guard let prior else { return 0 }
            var v: UInt64 = 0
            for i in 0..<UInt64(8) { v |= UInt64(prior.byte(at: offset + i)) << (8 * i) }
            return v
        }
    }

    /// Writes `count` bytes from `word(k)` (word k of the source) at byte
    /// `offset` (a multiple of 8), chunk by chunk. A chunk covered whole by
    /// a uniform source becomes a fill; a chunk covered whole by an aligned
    /// source array shares it. Stops at the fault, having written the bytes
    /// before it, as `copy_to_user` does: on x86_64 every byte up to the
    /// fault lands (Debian 6.1 and 6.12, `corpora/lab-probes.vfs`).
    private mutating func write(count: UInt64, atByte offset: UInt64, fill: UInt64?, block: [UInt64]?) -> Bool {
        let end = min(offset + count, writable)
        var at = offset
        while at < end {
            let c = Int(at / Self.chunkBytes)
            let chunkStart = UInt64(c) * Self.chunkBytes
            let stop = min(end, chunkStart + Self.chunkBytes)
            let srcWord = Int((at - offset) / 8)
            if at == chunkStart && stop == chunkStart + Self.chunkBytes {
                if let fill {
                    chunks[c] = .fill(fill)
                    at = stop
                    continue
                }
                if let block, srcWord == 0, block.count == Self.chunkWords {
                    chunks[c] = .words(block)
                    at = stop
                    continue
                }
            }
            if let fill, case .fill(fill) = current(c) {
                // Writing the value the chunk already holds.
                at = stop
                continue
            }
            var words: [UInt64]
            switch current(c) {
            case .fill(let v): words = [UInt64](repeating: v, count: Self.chunkWords)
            case .words(let w): words = w
            }
            chunks[c] = nil
            var dst = Int((at - chunkStart) / 8)
            var k = srcWord
            while at + 8 <= stop {
                words[dst] = fill ?? block![k]
                dst += 1
                k += 1
                at += 8
            }
            if at < stop {
                // A fault mid-word: only its low bytes land.
                let mask: UInt64 = (1 << ((stop - at) * 8)) - 1
                words[dst] = (words[dst] & ~mask) | ((fill ?? block![k]) & mask)
                at = stop
            }
            chunks[c] = .words(words)
        }
        return offset + count <= writable
    }

    /// `copy_to_user` of `count` bytes of one repeated word.
    mutating func write(fill value: UInt64, count: UInt64, atByte offset: UInt64) -> Bool {
        write(count: count, atByte: offset, fill: value, block: nil)
    }

    /// `copy_to_user` of the first `count` bytes of `block`.
    mutating func write(block: [UInt64], count: UInt64, atByte offset: UInt64) -> Bool {
        write(count: count, atByte: offset, fill: nil, block: block)
    }

    /// The buffer's contents as a trace stores them.
    public var contents: BitmapBytes {
        var b = BitmapBytes.Builder()
        let expanded = chunks.values.reduce(0) { n, c in if case .words = c { return n + 1 }; return n }
        if expanded > 1 { b.reserveLiteral(expanded * Int(Self.chunkBytes)) }
        var at: UInt64 = 0
        for c in chunks.keys.sorted() {
            let base = UInt64(c) * Self.chunkBytes
            guard base < size else { break }
            if base > at { append(prior, at..<base, to: &b) }
            let n = min(Self.chunkBytes, size - base)
            switch chunks[c]! {
            case .fill(let v) where v == 0 || v == ~0:
                b.append(v == 0 ? 0 : 0xFF, count: n)
            case .fill(let v):
                let words = [UInt64](repeating: v, count: Int((n + 7) / 8))
                appendWords(words, bytes: n, to: &b)
            case .words(let words):
                appendWords(words, bytes: n, to: &b)
            }
            at = base + n
        }
        if at < size { append(prior, at..<size, to: &b) }
        return b.build()
    }

    private func appendWords(_ words: [UInt64], bytes n: UInt64, to b: inout BitmapBytes.Builder) {
        words.withUnsafeBufferPointer { w in
            b.append(words: UnsafeBufferPointer(rebasing: w[0..<Int(n / 8)]))
            if n % 8 != 0 {
                let last = w[Int(n / 8)]
                for i in 0..<(n % 8) { b.append(UInt8(truncatingIfNeeded: last >> (8 * i)), count: 1) }
            }
        }
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
