import TestSupport
import Testing
import Trace
@testable import Replay

@Suite("Per-mapping bitmap and update_user_bitmap")
struct DMABitmapTests {
    /// update_user_bitmap spelled out bit by bit for a fresh bitmap: the
    /// mapping's dirty pages land at `offset`, the caller's whole first word is
    /// ORed in when the offset is not word-aligned, and whole words are written.
    static func naive(user: [UInt8], dirty: Set<UInt64>, nbits: UInt64, offset: UInt64) -> [UInt8] {
        var out = user
        let s = offset % 64, co = Int(offset / 64)
        let words = Int((nbits + s + 63) / 64)
        for w in 0..<words {
            var v: UInt64 = 0
            for b in 0..<64 as Range<UInt64> {
                let p = UInt64(w) * 64 + b
                if p >= s && dirty.contains(p - s) && p - s < nbits { v |= 1 << b }
            }
            if w == 0 && s != 0 {
                for i in 0..<8 { v |= UInt64(user[co * 8 + i]) << (8 * UInt64(i)) }
            }
            for i in 0..<8 { out[(co + w) * 8 + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        return out
    }

    @Test("matches the bit-by-bit algorithm at every offset and size", arguments: 0..<40 as Range<UInt64>)
    func againstNaive(seed: UInt64) {
        var r = SplitMix(seed: seed)
        let nbits = r.next() % 300 + 1
        let offset = r.next() % 200
        let size = Int((offset + nbits + 63) / 64 * 8 + (r.next() % 3) * 8)
        var dirty = Set<UInt64>()
        for _ in 0..<(r.next() % 60) { dirty.insert(r.next() % nbits) }
        let prior: [UInt8] = seed % 2 == 0 ? [UInt8](repeating: 0xA5, count: size) : (0..<size).map { _ in UInt8(truncatingIfNeeded: r.next()) }
        var bm = DMABitmap(nbits: nbits)
        for p in dirty { bm.set(p, count: 1) }
        var user = UserBitmapBuffer(size: UInt64(size), prior: BitmapBytes(prior), pointer: .valid)
        #expect(bm.updateUserBitmap(&user, pageOffset: offset, allDirty: false))
        #expect(user.contents.materialize() == Self.naive(user: prior, dirty: dirty, nbits: nbits, offset: offset),
                "nbits \(nbits) offset \(offset)")
    }

    @Test("all-dirty scope sets every page of the mapping and nothing past it")
    func allDirty() {
        var bm = DMABitmap(nbits: 100)
        var user = UserBitmapBuffer(size: 32, prior: nil, pointer: .valid)
        #expect(bm.updateUserBitmap(&user, pageOffset: 64, allDirty: true))
        #expect(user.contents.setBitRuns() == [64..<164])
    }

    @Test("two mappings sharing a word are clubbed: the second keeps the first's bits")
    func clubbing() {
        var user = UserBitmapBuffer(size: 16, prior: nil, pointer: .valid)
        var a = DMABitmap(nbits: 10), b = DMABitmap(nbits: 20)
        a.set(0, count: 10)
        b.set(0, count: 1)
        b.set(19, count: 1)
        #expect(a.updateUserBitmap(&user, pageOffset: 0, allDirty: false))
        #expect(b.updateUserBitmap(&user, pageOffset: 10, allDirty: false))
        #expect(user.contents.setBitRuns() == [0..<11, 29..<30])
    }

    @Test("words in holes are never written")
    func holesUntouched() {
        var user = UserBitmapBuffer(size: 32, prior: BitmapBytes(repeating: 0x5A, count: 32), pointer: .valid)
        var bm = DMABitmap(nbits: 64)
        #expect(bm.updateUserBitmap(&user, pageOffset: 128, allDirty: false))
        let bytes = user.contents.materialize()
        #expect(Array(bytes[0..<16]) == [UInt8](repeating: 0x5A, count: 16))
        #expect(Array(bytes[16..<24]) == [UInt8](repeating: 0, count: 8))
        #expect(Array(bytes[24..<32]) == [UInt8](repeating: 0x5A, count: 8))
    }

    @Test("a shifted query leaves scratch bits that a later query reports past the mapping's end (rule `bitmap.scratch-residue`)")
    func staleScratch() {
        // A 70-page mapping queried at page offset 60 is shifted left by 60
        // across three words; the query's bitmap_clear(0, 70) then leaves
        // bits 70..129 of the shifted copy standing. An aligned query of the
        // same mapping copies words 0 and 1 and so reports pages 70..127,
        // which lie past the mapping's end.
        var bm = DMABitmap(nbits: 70)
        bm.set(0, count: 70)
        var user = UserBitmapBuffer(size: 24, prior: nil, pointer: .valid)
        #expect(bm.updateUserBitmap(&user, pageOffset: 60, allDirty: false))
        bm.clear(0, count: 70) // what the kernel does after the query
        var again = UserBitmapBuffer(size: 16, prior: nil, pointer: .valid)
        #expect(bm.updateUserBitmap(&again, pageOffset: 0, allDirty: false))
        #expect(again.contents.setBitRuns() == [70..<128])
    }

    @Test("a NULL or unmapped buffer faults; a short one faults part-way")
    func faults() {
        var bm = DMABitmap(nbits: 64)
        var null = UserBitmapBuffer(size: 16, prior: nil, pointer: .null)
        #expect(!bm.updateUserBitmap(&null, pageOffset: 0, allDirty: true))
        var short = UserBitmapBuffer(size: 24, prior: nil, pointer: UserPointer(.valid, accessibleBytes: 12))
        var big = DMABitmap(nbits: 192)
        #expect(!big.updateUserBitmap(&short, pageOffset: 0, allDirty: true))
        let bytes = short.contents.materialize()
        #expect(Array(bytes[0..<12]) == [UInt8](repeating: 0xFF, count: 12))
        #expect(Array(bytes[12..<24]) == [UInt8](repeating: 0, count: 12))
        var ro = UserBitmapBuffer(size: 16, prior: nil, pointer: UserPointer(.readOnly))
        #expect(!bm.updateUserBitmap(&ro, pageOffset: 3, allDirty: false), "leftover read works, the write faults")
    }
}

/// The kernel's bitmap as one flat word array, spelled out plainly, to check
/// the block storage of `DMABitmap` and the chunks of `UserBitmapBuffer`
/// where they matter: bitmaps and buffers several 64 KiB blocks long.
struct FlatBitmap {
    var words: [UInt64]
    init(nbits: UInt64) { words = [UInt64](repeating: 0, count: Int((nbits + 63) / 64) + 1) }

    mutating func set(_ start: UInt64, _ count: UInt64, _ on: Bool) {
        var bit = start
        while bit < start + count {
            let w = Int(bit / 64)
            if bit % 64 == 0 && start + count - bit >= 64 {
                words[w] = on ? ~0 : 0
                bit += 64
                continue
            }
            if on { words[w] |= 1 << (bit % 64) } else { words[w] &= ~(1 << (bit % 64)) }
            bit += 1
        }
    }

    /// update_user_bitmap over a flat byte buffer.
    mutating func update(_ user: inout [UInt8], offset: UInt64, nbits: UInt64, allDirty: Bool) {
        if allDirty { set(0, nbits, true) }
        let s = offset % 64, co = Int(offset / 64) * 8
        if s != 0 {
            let lim = Int((nbits + s + 63) / 64)
            for k in stride(from: lim - 1, through: 0, by: -1) {
                words[k] = (words[k] << s) | (k > 0 ? words[k - 1] >> (64 - s) : 0)
            }
            var leftover: UInt64 = 0
            for i in 0..<8 { leftover |= UInt64(user[co + i]) << (8 * UInt64(i)) }
            words[0] |= leftover
        }
        let n = Int((nbits + s + 63) / 64 * 8)
        for i in 0..<n { user[co + i] = UInt8(truncatingIfNeeded: words[i / 8] >> (8 * UInt64(i % 8))) }
    }
}

@Suite("Block storage of large bitmaps and buffers")
struct BlockStorageTests {
    @Test("random sets, clears and shifted copy-outs over several blocks match a flat word array", arguments: 0..<6 as Range<UInt64>)
    func againstFlat(seed: UInt64) {
        var r = SplitMix(seed: seed &+ 1000)
        let blockBits = UInt64(DMABitmap.blockWords) * 64
        let nbits = blockBits * 2 + r.below(blockBits) + 1
        var bm = DMABitmap(nbits: nbits)
        var flat = FlatBitmap(nbits: nbits)
        for round in 0..<8 {
            for _ in 0..<6 {
                // Whole blocks, block-crossing runs, and single bits.
                let start: UInt64, count: UInt64
                switch r.below(3) {
                case 0: start = r.below(3) * blockBits; count = min(nbits - start, blockBits * (r.below(2) + 1))
                case 1: start = r.below(nbits); count = r.below(nbits - start) + 1
                default: start = r.below(nbits); count = 1
                }
                let on = r.below(3) != 0
                if on { bm.set(start, count: count) } else { bm.clear(start, count: count) }
                flat.set(start, count, on)
            }
            #expect(bm.flatWords == flat.words, "seed \(seed) round \(round) after sets")
            let offset = r.below(2) == 0 ? r.below(4) * blockBits : r.below(3 * blockBits)
            let size = (offset + nbits + 63) / 64 * 8 + 8 * r.below(3)
            var prior = [UInt8](repeating: 0, count: Int(size))
            if r.below(2) == 0 { for i in prior.indices { prior[i] = UInt8(truncatingIfNeeded: r.next()) } }
            let allDirty = r.below(4) == 0
            var user = UserBitmapBuffer(size: size, prior: BitmapBytes(prior), pointer: .valid)
            #expect(bm.updateUserBitmap(&user, pageOffset: offset, allDirty: allDirty))
            var flatUser = prior
            flat.update(&flatUser, offset: offset, nbits: nbits, allDirty: allDirty)
            #expect(user.contents == BitmapBytes(flatUser), "seed \(seed) round \(round): copy-out at offset \(offset)")
            #expect(bm.flatWords == flat.words, "seed \(seed) round \(round) after the shift")
            bm.clear(0, count: nbits)
            flat.set(0, nbits, false)
        }
    }

    @Test("single-bit sets and clears, union word for word and the set bits' walk match a flat word array, with fills on both sides",
          arguments: 0..<6 as Range<UInt64>)
    func unionAndWalk(seed: UInt64) {
        var r = SplitMix(seed: seed &+ 2000)
        let blockBits = UInt64(DMABitmap.blockWords) * 64
        let nbits = blockBits * 2 + r.below(blockBits) + 1
        var a = DMABitmap(nbits: nbits), b = DMABitmap(nbits: nbits)
        var fa = FlatBitmap(nbits: nbits), fb = FlatBitmap(nbits: nbits)
        // Whole blocks as fills on either side: all-ones in a, in b, or both.
        if seed % 3 == 0 { a.set(0, count: blockBits); fa.set(0, blockBits, true) }
        if seed % 2 == 0 { b.set(blockBits, count: blockBits); fb.set(blockBits, blockBits, true) }
        for _ in 0..<500 {
            let bit = r.below(nbits)
            if r.below(4) == 0 { b.clearBit(bit); fb.set(bit, 1, false) } else { b.setBit(bit); fb.set(bit, 1, true) }
            let other = r.below(nbits)
            a.setBit(other)
            fa.set(other, 1, true)
        }
        #expect(b.flatWords == fb.words, "seed \(seed): single bits")
        var walked: [UInt64] = []
        b.forEachSetBit { walked.append($0) }
        let expected = (0..<nbits).filter { (bit: UInt64) -> Bool in
            let word: UInt64 = fb.words[Int(bit / 64)]
            return (word >> (bit % 64)) & 1 == 1
        }
        #expect(walked == expected, "seed \(seed): the walk")
        a.formUnion(b)
        let union: [UInt64] = zip(fa.words, fb.words).map { (x: UInt64, y: UInt64) -> UInt64 in x | y }
        #expect(a.flatWords == union, "seed \(seed): the union")
    }

    @Test("an aligned all-dirty copy-out of a multi-block bitmap is stored as fills, and a fault stops it mid-block")
    func fillsAndFaults() {
        let blockBits = UInt64(DMABitmap.blockWords) * 64
        var bm = DMABitmap(nbits: blockBits * 3)
        var user = UserBitmapBuffer(size: blockBits * 3 / 8, prior: nil, pointer: .valid)
        #expect(bm.updateUserBitmap(&user, pageOffset: 0, allDirty: true))
        #expect(user.contents == BitmapBytes(repeating: 0xFF, count: blockBits * 3 / 8))
        var short = UserBitmapBuffer(size: blockBits * 3 / 8, prior: nil, pointer: UserPointer(.valid, accessibleBytes: blockBits / 8 + 5))
        #expect(!bm.updateUserBitmap(&short, pageOffset: 0, allDirty: true))
        let bytes = short.contents
        #expect(bytes.setBitRuns() == [0..<(blockBits + 40)])
    }
}
