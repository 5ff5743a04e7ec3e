import Trace

/// A `/dev/vfio/vfio` container: its groups and, once SET_IOMMU succeeded,
/// its type1 IOMMU.
final class ContainerState {
    var groups: [GroupState] = []
    var iommu: Type1State?
}

/// A group (`/dev/vfio/N`). Its kind decides the dirty scope: an
/// IOMMU-backed group that never pinned makes every mapped page dirty
/// (`docs/kernel-rules.md#dirty-scope`).
final class GroupState {
    let number: UInt32
    var kind: GroupKind = .unknown
    var fdOpen = false
    var deviceFDs = 0
    var container: ContainerState?
    /// `group->pinned_page_dirty_scope`.
    var pinnedScope = false
    /// Attached to the container's type1 IOMMU (after SET_IOMMU).
    var attached = false
    /// What the group's pinning driver believes it holds, by IOVA: its own
    /// list (the vfiotrace_pin device keeps one), counted up by each page
    /// of its successful `vfio_pin_pages` and down by its `vfio_unpin_pages`
    /// whatever the kernel found. It unpins these when its device closes
    /// (`close_device`) and, those in the range, when the type1 driver asks
    /// (`dma_unmap`). The kernel finds each page anew for the unpin, so a
    /// page can be released from another mapping than the one holding it
    /// (``BitmapEngine/kernelUnpin(_:_:)``).
    var driverPins = PageCounts()

    init(number: UInt32) { self.number = number }

    /// Emulated (mdev) groups have no IOMMU domain; unknown is taken as
    /// IOMMU-backed, the common case (vfio-pci).
    var isEmulated: Bool { kind == .emulated }
}

/// `struct vfio_iommu` of the type1 driver.
final class Type1State {
    let v2: Bool
    /// `iommu->nesting`: opened as `VFIO_TYPE1_NESTING_IOMMU` (otherwise
    /// v2); every IOMMU domain must then take nesting
    /// (`iommu_enable_nesting` in `vfio_iommu_type1_attach_group`).
    var nesting = false
    var tracking = false
    /// `iommu->pgsize_bitmap`: `PAGE_MASK` at open (5.16+; the same value
    /// earlier once a group is attached), ANDed with every IOMMU domain's.
    var pgsizeBitmap: UInt64
    var mappings: MappingIndex
    var dmaAvail: UInt32
    /// Attached groups, in attach order.
    var groups: [GroupState] = []
    /// `num_non_pinned_groups` (5.12+); before 5.12 the bool
    /// `pinned_page_dirty_scope` is exactly `nonPinnedGroups == 0`, since it
    /// is recomputed from the groups on every change.
    var nonPinnedGroups = 0
    /// `vaddr_invalid_count` (UNMAP with VADDR, 5.12+).
    var vaddrInvalid: Set<UInt64> = []
    /// The usable IOVA ranges (empty: every IOVA is allowed).
    var iovaRanges: [ClosedRange<UInt64>] = []

    init(v2: Bool, pageMask: UInt64, dmaEntryLimit: UInt32) {
        self.v2 = v2
        mappings = MappingIndex()
        pgsizeBitmap = pageMask
        dmaAvail = dmaEntryLimit
    }

    /// `1 << __ffs(pgsize_bitmap)`: the page size of every check and bit.
    var pgsize: UInt64 { 1 << pgshift }
    var pgshift: UInt64 { UInt64(pgsizeBitmap.trailingZeroBitCount) }

    var hasIOMMUDomain: Bool { groups.contains { !$0.isEmulated } }
    var hasEmulatedGroups: Bool { groups.contains { $0.isEmulated } }

    /// Whether a query reports every page of `m` dirty: a non-pinned group
    /// is attached and the mapping is in an IOMMU domain (5.8+), or, in the
    /// v16 patch, whenever it is in one.
    func reportsAllDirty(_ m: DMAMapping, _ profile: KernelProfile) -> Bool {
        switch profile.scope {
        case .everyIOMMUMapped: m.iommuMapped
        case .pinnedScopeFlag, .nonPinnedGroupCount: nonPinnedGroups > 0 && m.iommuMapped
        }
    }
}
