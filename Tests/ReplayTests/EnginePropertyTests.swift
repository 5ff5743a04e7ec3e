import TestSupport
import Testing
import Trace
@testable import Replay
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately naive statement of type1 dirty tracking for an
/// emulated-only v2 container: pages as booleans, one per bit, mappings in a
/// plain array searched linearly, pins in a dictionary. The kernel bitmap
/// (with its scratch word) is kept bit by bit so that the shifted copy-out
/// of `update_user_bitmap` can be spelled out one bit at a time.
struct NaiveContainer {
    struct Mapping {
        var firstPage: UInt64
        var pages: UInt64
        /// The kernel bitmap including the scratch word, one Bool per bit.
        var bits: [Bool]
        var lastPage: UInt64 { firstPage + pages - 1 }
    }

    let dmaRWBits: KernelProfile.DMARWBitCount
    /// Pre-5.12 UNMAP visits mappings in red-black-tree order; the model
    /// keeps its own tree of the same inserts and removes for that order
    /// (DMATree is checked on its own in DMATreeTests).
    var treeOrder = false
    let tree = DMATree()
    var treeNodes: [UInt64: DMAMapping] = [:]
    var mappings: [Mapping] = []
    var pinned: [UInt64: Int] = [:]
    var tracking = false
    static let page: UInt64 = 4096

    static func freshBits(_ pages: UInt64) -> [Bool] { [Bool](repeating: false, count: Int((pages + 63) / 64 + 1) * 64) }

    func index(ofPage p: UInt64) -> Int? { mappings.firstIndex { $0.firstPage <= p && p <= $0.lastPage } }

    mutating func repopulate(_ i: Int) {
        for p in 0..<mappings[i].pages where pinned[mappings[i].firstPage + p] != nil { mappings[i].bits[Int(p)] = true }
    }

    mutating func map(firstPage: UInt64, pages: UInt64) -> CallResult {
        if mappings.contains(where: { $0.firstPage <= firstPage + pages - 1 && firstPage <= $0.lastPage }) { return .error(EEXIST) }
        mappings.append(Mapping(firstPage: firstPage, pages: pages, bits: Self.freshBits(pages)))
        mappings.sort { $0.firstPage < $1.firstPage }
        let node = DMAMapping(iova: firstPage * Self.page, size: pages * Self.page, vaddr: .valid, prot: 3, iommuMapped: false)
        treeNodes[firstPage] = node
        tree.insert(node)
        return .ok(0)
    }

    mutating func start() {
        guard !tracking else { return }
        for i in mappings.indices {
            mappings[i].bits = Self.freshBits(mappings[i].pages)
            repopulate(i)
        }
        tracking = true
    }

    mutating func pin(firstPage: UInt64, count: UInt64) -> CallResult {
        var done: [UInt64] = []
        for p in firstPage..<(firstPage + count) {
            guard let i = index(ofPage: p) else {
                for q in done { pinned[q] = pinned[q]! > 1 ? pinned[q]! - 1 : nil }
                return .error(EINVAL)
            }
            if let r = pinned[p] {
                pinned[p] = r + 1
            } else {
                pinned[p] = 1
                if tracking { mappings[i].bits[Int(p - mappings[i].firstPage)] = true }
            }
            done.append(p)
        }
        return .ok(Int64(count))
    }

    mutating func unpin(page p: UInt64) {
        guard index(ofPage: p) != nil, let r = pinned[p] else { return }
        pinned[p] = r > 1 ? r - 1 : nil
    }

    mutating func write(byte start: UInt64, length: UInt64) -> CallResult {
        var at = start
        let end = start + length
        while at < end {
            guard let i = index(ofPage: at / Self.page) else { return .error(EINVAL) }
            let m = mappings[i]
            let offset = at - m.firstPage * Self.page
            let count = min(end - at, (m.lastPage + 1) * Self.page - at)
            if tracking {
                let first = offset / Self.page
                let n = dmaRWBits == .pagesTouched ? (offset + count - 1) / Self.page - first + 1 : count / Self.page
                for b in first..<(first + n) { mappings[i].bits[Int(b)] = true }
            }
            at += count
        }
        return .ok(0)
    }

    /// `update_user_bitmap`, one bit at a time.
    mutating func report(_ i: Int, basePage: UInt64, into user: inout [Bool]) {
        let n = mappings[i].pages
        let off = mappings[i].firstPage - basePage
        let s = Int(off % 64), wordBit = Int(off / 64) * 64
        let span = Int((n + UInt64(s) + 63) / 64) * 64
        if s > 0 {
            var shifted = mappings[i].bits
            for b in 0..<span { shifted[b] = b >= s ? mappings[i].bits[b - s] : false }
            for b in 0..<64 where user[wordBit + b] { shifted[b] = true }
            mappings[i].bits = shifted
        }
        for b in 0..<span { user[wordBit + b] = mappings[i].bits[b] }
    }

    func bisects(_ first: UInt64, _ last: UInt64) -> Bool {
        mappings.contains { ($0.firstPage < first && first <= $0.lastPage) || ($0.firstPage <= last && last < $0.lastPage) }
    }

    mutating func query(firstPage: UInt64, pages: UInt64, user: inout [Bool]) -> CallResult {
        guard tracking else { return .error(EINVAL) }
        let last = firstPage + pages - 1
        if bisects(firstPage, last) { return .error(EINVAL) }
        for i in mappings.indices where mappings[i].firstPage >= firstPage && mappings[i].firstPage <= last {
            report(i, basePage: firstPage, into: &user)
            for b in 0..<Int(mappings[i].pages) { mappings[i].bits[b] = false }
            repopulate(i)
        }
        return .ok(0)
    }

    mutating func unmap(firstPage: UInt64, pages: UInt64, user: inout [Bool]) -> (CallResult, UInt64?) {
        let last = firstPage + pages - 1
        if !tracking || bisects(firstPage, last) { return (.error(EINVAL), nil) }
        var size: UInt64 = 0
        var order = mappings.indices.filter { mappings[$0].firstPage >= firstPage && mappings[$0].firstPage <= last }
        if treeOrder {
            order = []
            while let m = tree.find(start: firstPage * Self.page, size: pages * Self.page) {
                order.append(mappings.firstIndex { $0.firstPage * Self.page == m.iova }!)
                tree.remove(m)
            }
        }
        for i in order {
            report(i, basePage: firstPage, into: &user)
            size += mappings[i].pages * Self.page
            for p in mappings[i].firstPage...mappings[i].lastPage { pinned[p] = nil }
        }
        for m in mappings where m.firstPage >= firstPage && m.firstPage <= last {
            if let node = treeNodes.removeValue(forKey: m.firstPage) { tree.remove(node) }
        }
        mappings.removeAll { $0.firstPage >= firstPage && $0.firstPage <= last }
        return (.ok(0), size)
    }
}

@Suite("Engine against a naive page-by-page model")
struct EnginePropertyTests {
    static let prelude: [Event] = [
        Event(.open(Open(path: "/dev/vfio/vfio", result: .ok(3)))),
        Event(.open(Open(path: "/dev/vfio/20", result: .ok(4)))),
        Event(.groupSetContainer(GroupSetContainer(fd: 4, container: 3, kind: .emulated))),
        Event(.setIOMMU(SetIOMMU(fd: 3, iommuType: 3))),
        Event(.groupGetDeviceFD(GroupGetDeviceFD(fd: 4, name: "mdev0"))),
    ]

    static func bits(_ b: BitmapBytes?) -> [Bool] {
        guard let b else { return [] }
        return b.materialize().flatMap { byte in (0..<8).map { byte >> $0 & 1 != 0 } }
    }

    static func bytes(_ bits: [Bool]) -> BitmapBytes {
        BitmapBytes(stride(from: 0, to: bits.count, by: 8).map { i in
            (0..<8).reduce(UInt8(0)) { $0 | (bits[i + $1] ? 1 << $1 : 0) }
        })
    }

    /// A range of whole mappings (sometimes reaching into the holes around
    /// them), or now and then a range that bisects one.
    static func pickRange(_ naive: NaiveContainer, _ r: inout SplitMix) -> (UInt64, UInt64)? {
        guard !naive.mappings.isEmpty else { return nil }
        let a = Int(r.below(UInt64(naive.mappings.count)))
        let b = min(naive.mappings.count - 1, a + Int(r.below(4)))
        var first = naive.mappings[a].firstPage, last = naive.mappings[b].lastPage
        let below = a > 0 ? naive.mappings[a - 1].lastPage + 1 : 0
        let above = b + 1 < naive.mappings.count ? naive.mappings[b + 1].firstPage - 1 : 16383
        if r.below(2) == 0 && first > below { first -= r.below(first - below + 1) }
        if r.below(2) == 0 && last < above { last += r.below(above - last + 1) }
        if r.below(10) == 0 { last = max(first, last - 1) } // may bisect
        return (first, last - first + 1)
    }

    @Test("random maps, pins, unpins, writes, queries and unmaps agree bit for bit with the naive model",
          arguments: [KernelProfile.v5_8, .v5_10, .v5_12, .latest], 0..<12 as Range<UInt64>)
    func againstNaive(profile: KernelProfile, seed: UInt64) {
        var r = SplitMix(seed: seed &* 7919 &+ UInt64(profile.name.utf8.count))
        let engine = BitmapEngine(profile: profile)
        for e in Self.prelude { _ = engine.perform(e) }
        var naive = NaiveContainer(dmaRWBits: profile.dmaRWBits)
        naive.treeOrder = profile.unmapInTreeOrder
        let page = NaiveContainer.page
        for step in 0..<300 {
            let op = r.below(100)
            var event: Event
            var expectedResult: CallResult?
            var expectedBits: [Bool]? = nil
            var expectedSize: UInt64? = nil
            switch op {
            case 0..<15:
                let first = r.below(16000), pages = r.below(400) + 1
                event = Event(.mapDMA(MapDMA(fd: 3, iova: first * page, size: pages * page)))
                expectedResult = naive.map(firstPage: first, pages: pages)
            case 15..<30:
                guard let m = naive.mappings.randomElement(using: &r) else { continue }
                let p = m.firstPage + r.below(m.pages + 2)
                let n = r.below(4) + 1
                event = Event(.pin(Pin(group: 20, iova: p * page, npage: UInt32(n))))
                expectedResult = naive.pin(firstPage: p, count: n)
            case 30..<38:
                guard let p = naive.pinned.keys.sorted().randomElement(using: &r) else { continue }
                event = Event(.unpin(Unpin(group: 20, iova: p * page, npage: 1)))
                naive.unpin(page: p)
            case 38..<55:
                guard let m = naive.mappings.randomElement(using: &r) else { continue }
                let start = m.firstPage * page + r.below(m.pages * page + page)
                let len = r.below(3 * page) + 1
                event = Event(.dmaRW(DMARW(group: 20, iova: start, length: len, write: r.below(4) != 0)))
                if case .dmaRW(let x) = event.body, !x.write {
                    // A read walks the mappings the same way and sets nothing.
                    let tracking = naive.tracking
                    naive.tracking = false
                    expectedResult = naive.write(byte: start, length: len)
                    naive.tracking = tracking
                } else {
                    expectedResult = naive.write(byte: start, length: len)
                }
            case 55..<60:
                event = Event(.dirtyPages(DirtyPages(fd: 3, flags: VFIOUAPI.dirtyFlagStart)))
                naive.start()
                expectedResult = .ok(0)
            case 60..<62:
                event = Event(.dirtyPages(DirtyPages(fd: 3, flags: VFIOUAPI.dirtyFlagStop)))
                naive.tracking = false
                expectedResult = .ok(0)
            default:
                guard let (first, pages) = Self.pickRange(naive, &r) else { continue }
                let size = VFIOLimits.dirtyBitmapBytes(pages) + 8 * r.below(2)
                var user = [Bool](repeating: false, count: Int(size) * 8)
                if r.below(3) == 0 { for i in user.indices { user[i] = r.below(2) == 0 } }
                let arg = BitmapArg(pgsize: page, size: size, prior: Self.bytes(user))
                if op < 90 {
                    event = Event(.dirtyPages(DirtyPages(fd: 3, argsz: 48, flags: VFIOUAPI.dirtyFlagGetBitmap,
                                                         range: DirtyRange(iova: first * page, size: pages * page, bitmap: arg))))
                    expectedResult = naive.query(firstPage: first, pages: pages, user: &user)
                } else {
                    event = Event(.unmapDMA(UnmapDMA(fd: 3, argsz: 48, flags: 1, iova: first * page, size: pages * page, bitmap: arg)))
                    (expectedResult, expectedSize) = naive.unmap(firstPage: first, pages: pages, user: &user)
                }
                if expectedResult?.isSuccess == true { expectedBits = user }
            }
            let got = engine.perform(event).event
            let label = "seed \(seed) step \(step): \(got.inputLine)"
            if let expectedResult {
                #expect(got.result == expectedResult, "\(label)")
            }
            switch got.body {
            case .dirtyPages(let x) where expectedBits != nil:
                #expect(Self.bits(x.bitmapOut) == expectedBits!, "\(label)")
            case .unmapDMA(let x):
                #expect(x.sizeOut == expectedSize, "\(label)")
                if let expectedBits { #expect(Self.bits(x.bitmapOut) == expectedBits, "\(label)") }
            default: break
            }
        }
    }
}

