/// Reference counts by page IOVA: a mapping's `pfn_list` (``DMAMapping``)
/// and a driver's ledger of its own pins (``GroupState/driverPins``).
///
/// The hot structure of a pin-heavy replay, so not a `Dictionary`: open
/// addressing with linear probing in two flat arrays, and deletion by
/// backward shift (no tombstones, so probes stay short however many pins
/// come and go). Keys are mixed with a seed drawn once per process before
/// the probe, as `Dictionary`'s hashing is: a trace chooses its IOVAs, and
/// must not be able to choose ones that collide. Iteration order is as
/// arbitrary as a `Dictionary`'s; callers that need an order sort.
struct PageCounts: Sequence {
    /// Slot keys; meaningful where `counts` is non-zero.
    private var keys: [UInt64] = []
    /// Slot counts; 0 marks an empty slot (a page's count is at least 1).
    private var counts: [UInt32] = []
    private(set) var count = 0

    private static let seed = UInt64.random(in: .min ... .max)

    init() {}

    var isEmpty: Bool { count == 0 }

    /// The count of `page`; nil when it holds none. Setting nil or 0
    /// removes it.
    subscript(page: UInt64) -> UInt32? {
        get {
            guard let i = find(page) else { return nil }
            return counts[i]
        }
        set {
            if let v = newValue, v > 0 { set(page, v) } else { remove(page) }
        }
    }

    /// The count of `page`, `defaultValue` when it holds none.
    subscript(page: UInt64, default defaultValue: UInt32) -> UInt32 {
        get { self[page] ?? defaultValue }
        set { self[page] = newValue }
    }

    mutating func removeAll() {
        keys = []
        counts = []
        count = 0
    }

    /// The lowest page held.
    func minKey() -> UInt64? {
        var best: UInt64? = nil
        for (k, c) in zip(keys, counts) where c > 0 && (best == nil || k < best!) { best = k }
        return best
    }

    func makeIterator() -> Iterator { Iterator(keys: keys, counts: counts) }

    struct Iterator: IteratorProtocol {
        let keys: [UInt64]
        let counts: [UInt32]
        var i = 0

        mutating func next() -> (key: UInt64, value: UInt32)? {
            while i < counts.count {
                defer { i += 1 }
                if counts[i] > 0 { return (keys[i], counts[i]) }
            }
            return nil
        }
    }

    // MARK: The table

    /// The slot `page` is looked for from (murmur3's 64-bit finalizer over
    /// the seeded key).
    private func home(_ page: UInt64) -> Int {
        var h = page ^ Self.seed
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return Int(truncatingIfNeeded: h) & (counts.count - 1)
    }

    private func find(_ page: UInt64) -> Int? {
        guard count > 0 else { return nil }
        let mask = counts.count - 1
        var i = home(page)
        while counts[i] != 0 {
            if keys[i] == page { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    private mutating func set(_ page: UInt64, _ value: UInt32) {
        if let i = find(page) {
            counts[i] = value
            return
        }
        // At most three quarters full: probes stay short.
        if (count + 1) * 4 > counts.count * 3 { grow() }
        let mask = counts.count - 1
        var i = home(page)
        while counts[i] != 0 { i = (i + 1) & mask }
        keys[i] = page
        counts[i] = value
        count += 1
    }

    private mutating func remove(_ page: UInt64) {
        guard var hole = find(page) else { return }
        let mask = counts.count - 1
        counts[hole] = 0
        count -= 1
        // Backward shift: an entry after the hole whose home is not in
        // (hole, j] cyclically would be unreachable past the hole; move it in.
        var j = hole
        while true {
            j = (j + 1) & mask
            if counts[j] == 0 { break }
            let h = home(keys[j])
            let reachable = hole < j ? (h > hole && h <= j) : (h > hole || h <= j)
            if !reachable {
                keys[hole] = keys[j]
                counts[hole] = counts[j]
                counts[j] = 0
                hole = j
            }
        }
    }

    private mutating func grow() {
        let oldKeys = keys, oldCounts = counts
        let capacity = Swift.max(16, counts.count * 2)
        keys = [UInt64](repeating: 0, count: capacity)
        counts = [UInt32](repeating: 0, count: capacity)
        count = 0
        for (k, c) in zip(oldKeys, oldCounts) where c > 0 { set(k, c) }
    }
}
