import Trace

/// One `struct vfio_dma`: a MAP_DMA the container holds.
final class DMAMapping {
    let iova: UInt64
    let size: UInt64
    let vaddr: UserPointer
    /// IOMMU_READ (1) | IOMMU_WRITE (2), the same bits as the MAP flags.
    let prot: UInt32
    /// Mapped into a real IOMMU domain (pinned by the type1 driver itself);
    /// with a non-pinned group attached this makes queries report every page.
    var iommuMapped: Bool
    /// `pfn_list`: pages pinned by an emulated device, by IOVA, with their
    /// reference counts. Who holds them is the drivers' business
    /// (``GroupState/driverPins``): the kernel only counts. Changed only
    /// through ``addPinReference(_:)``, ``dropPinReference(_:)`` and
    /// ``removeAllPins()``, which keep ``pinnedPages`` in step.
    private(set) var pinned = PageCounts()
    /// The same pages as bits, one per 4 KiB from ``iova`` (bit
    /// `(pin - iova) >> 12`), so that repopulating after every query ORs
    /// words instead of walking the hash table page by page. Allocated at
    /// the first pin; pins below the mapping are only counted.
    private var pinnedPages: DMABitmap?
    /// Pins whose IOVA lies below the mapping (an unaligned pin's page
    /// reaching it from below).
    private var pinnedBelow = 0
    static let pinnedPageShift: UInt64 = 12
    /// Allocated only while tracking (`vfio_dma_bitmap_alloc`).
    var bitmap: DMABitmap?

    init(iova: UInt64, size: UInt64, vaddr: UserPointer, prot: UInt32, iommuMapped: Bool) {
        self.iova = iova
        self.size = size
        self.vaddr = vaddr
        self.prot = prot
        self.iommuMapped = iommuMapped
    }

    /// The last byte (inclusive): a mapping may end exactly at 2^64.
    var last: UInt64 { iova &+ (size &- 1) }

    /// `vfio_dma_populate_bitmap`: one bit for every pinned page. Returns
    /// whether a pin lies below the mapping (an unaligned pin whose page
    /// starts below it, see ``BitmapEngine/pin(_:)``): the kernel's
    /// `bitmap_set(dma->bitmap, (iova - dma->iova) >> pgshift, 1)` then
    /// takes the wrapped index as an `unsigned int`, 0xffffffff, and writes
    /// 512 MiB past the bitmap; the engine sets nothing for it.
    func populate(pgshift: UInt64) -> Bool {
        guard var b = bitmap, !pinned.isEmpty else { return false }
        bitmap = nil // keep the words uniquely referenced while setting
        let shift = Self.pinnedPageShift
        if let pages = pinnedPages, pgshift == shift {
            // The tracking page is the pinned-page bit's page: word for word.
            b.formUnion(pages)
        } else if let pages = pinnedPages, pgshift > shift {
            pages.forEachSetBit { b.setBit($0 >> (pgshift - shift)) }
        } else {
            for (iova, _) in pinned where iova >= self.iova { b.setBit((iova - self.iova) >> pgshift) }
        }
        bitmap = b
        return pinnedBelow > 0
    }

    /// One more reference to the page pinned at `iova`; true when it was
    /// not pinned before (`vfio_add_to_pfn_list`).
    @discardableResult
    func addPinReference(_ iova: UInt64) -> Bool {
        if let refs = pinned[iova] {
            pinned[iova] = refs &+ 1
            return false
        }
        pinned[iova] = 1
        if iova < self.iova {
            pinnedBelow += 1
        } else {
            // Only for mappings a bitmap could cover (at most INT_MAX pages,
            // DIRTY_BITMAP_PAGES_MAX): the bits' block index stays small; a
            // larger mapping is repopulated from the hash table.
            let pages = (size >> Self.pinnedPageShift) + 1
            if pinnedPages == nil && pages <= UInt64(Int32.max) && pinned.count - pinnedBelow == 1 { pinnedPages = DMABitmap(nbits: pages) }
            pinnedPages?.setBit((iova - self.iova) >> Self.pinnedPageShift)
        }
        return true
    }

    /// One reference fewer to the page at `iova`, if it is pinned here;
    /// the page leaves at its last (`vfio_remove_from_pfn_list`).
    func dropPinReference(_ iova: UInt64) {
        guard let refs = pinned[iova] else { return }
        if refs > 1 {
            pinned[iova] = refs - 1
            return
        }
        pinned[iova] = nil
        if iova < self.iova {
            pinnedBelow -= 1
        } else {
            pinnedPages?.clearBit((iova - self.iova) >> Self.pinnedPageShift)
        }
    }

    /// Forgets every pin (the mapping is going).
    func removeAllPins() {
        pinned.removeAll()
        pinnedPages = nil
        pinnedBelow = 0
    }
}

/// The container's `dma_list`: mappings sorted by IOVA, never overlapping.
/// Lookups are binary searches; mappings arrive mostly in ascending order
/// (QEMU maps guest RAM bottom-up), so insertion is cheap in practice.
struct MappingIndex {
    private(set) var all: [DMAMapping] = []
    /// The same mappings as the kernel's red-black tree holds them. Its
    /// shape decides what `vfio_find_dma` returns when a range overlaps
    /// several mappings: the UNMAP order before 5.12, and at any version
    /// the mapping an unaligned pin's page straddling two mappings goes to
    /// (``kernelFind(_:_:)``). A reference: a container owns exactly one
    /// index, never copied.
    let tree: DMATree?

    init(keepingTree: Bool = true) {
        tree = keepingTree ? DMATree() : nil
    }

    /// `vfio_find_dma(iommu, first, last - first + 1)`: the first mapping
    /// the kernel's tree search meets that overlaps the range. With one
    /// overlapping mapping that is the one; with several (an unaligned
    /// page across two mappings' boundary) the tree's shape picks, which
    /// the IOVA order cannot tell (vfiotrace fuzz against 6.1 and 6.12,
    /// seed 100016: the later mapping, the tree's root, was found).
    func kernelFind(_ first: UInt64, _ last: UInt64) -> DMAMapping? {
        guard let m = firstOverlapping(first, last) else { return nil }
        guard m.last < last, let tree, m.last < .max, firstOverlapping(m.last + 1, last) != nil else { return m }
        return tree.find(start: first, size: last &- first &+ 1)
    }

    var count: Int { all.count }
    var isEmpty: Bool { all.isEmpty }

    /// Index of the first mapping whose last byte is at or above `x`.
    private func firstEnding(atOrAfter x: UInt64) -> Int {
        var lo = 0, hi = all.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if all[mid].last < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The mapping that contains byte `x`.
    func containing(_ x: UInt64) -> DMAMapping? {
        let i = firstEnding(atOrAfter: x)
        return i < all.count && all[i].iova <= x ? all[i] : nil
    }

    /// The first mapping overlapping bytes `[first, last]`
    /// (`vfio_find_dma_first_node`).
    func firstOverlapping(_ first: UInt64, _ last: UInt64) -> DMAMapping? {
        let i = firstEnding(atOrAfter: first)
        return i < all.count && all[i].iova <= last ? all[i] : nil
    }

    /// Mappings that start inside `[first, last]`, in order: the loop of
    /// `vfio_iova_dirty_bitmap` (the bisect checks make them lie wholly
    /// inside).
    func starting(in first: UInt64, _ last: UInt64) -> ArraySlice<DMAMapping> {
        var lo = 0, hi = all.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if all[mid].iova < first { lo = mid + 1 } else { hi = mid }
        }
        var end = lo
        while end < all.count && all[end].iova <= last { end += 1 }
        return all[lo..<end]
    }

    /// Mappings overlapping `[first, last]`, in order.
    func overlapping(_ first: UInt64, _ last: UInt64) -> ArraySlice<DMAMapping> {
        let lo = firstEnding(atOrAfter: first)
        var end = lo
        while end < all.count && all[end].iova <= last { end += 1 }
        return all[lo..<end]
    }

    mutating func insert(_ m: DMAMapping) {
        tree?.insert(m)
        if let tail = all.last, tail.iova < m.iova {
            all.append(m)
        } else {
            all.insert(m, at: firstEnding(atOrAfter: m.iova))
        }
    }

    mutating func remove(_ m: DMAMapping) {
        let i = firstEnding(atOrAfter: m.iova)
        precondition(all[i] === m)
        all.remove(at: i)
        tree?.remove(m)
    }

    /// Removes `ms`, which are consecutive in the index, in one step.
    mutating func remove(consecutive ms: ArraySlice<DMAMapping>) {
        guard let first = ms.first else { return }
        let i = firstEnding(atOrAfter: first.iova)
        precondition(all[i] === first)
        all.removeSubrange(i..<(i + ms.count))
        for m in ms { tree?.remove(m) }
    }

    mutating func removeAll() {
        all.removeAll()
        tree?.removeAll()
    }
}
