import Trace

/// MAP_DMA, split as the kernel splits it: the ioctl's argument checks
/// (`vfio_iommu_type1_map_dma`), the mapping itself under the lock
/// (`vfio_dma_do_map`), the IOVA-range check (`vfio_iommu_iova_dma_valid`)
/// and the pinning of an IOMMU-backed mapping (`vfio_pin_map_dma`). A new
/// mapping gets a bitmap when tracking is on
/// (`docs/kernel-rules.md#map-while-tracking`).
extension BitmapEngine {
    /// `vfio_iommu_type1_map_dma`: `argsz` and the flags the profile knows.
    func mapDMA(_ t: Type1State, _ x: MapDMA) -> CallResult {
        guard x.argsz >= VFIOUAPI.dmaMapSize, x.flags & ~profile.mapFlagMask == 0 else { return .error(.EINVAL) }
        return doMap(t, x)
    }

    /// `vfio_dma_do_map`, checks in the kernel's order: exactly one of a
    /// protection or VADDR; size, IOVA and vaddr aligned to the smallest
    /// page; no wrap; an UPDATE_VADDR restores an invalidated mapping;
    /// otherwise no overlap (EEXIST), `dma_avail` left (ENOSPC), inside
    /// the IOVA ranges, pinned when IOMMU-backed.
    func doMap(_ t: Type1State, _ x: MapDMA) -> CallResult {
        let prot = x.flags & 3
        let setVAddr = x.flags & VFIOUAPI.mapFlagVAddr != 0
        if (prot != 0 && setVAddr) || (prot == 0 && !setVAddr) { return .error(.EINVAL) }
        let pgsize = t.pgsize
        guard x.size != 0, (x.size | x.iova | x.vaddr.pageOffset) & (pgsize - 1) == 0 else { return .error(.EINVAL) }
        let last = x.iova &+ (x.size - 1)
        guard last >= x.iova else { return .error(.EINVAL) }
        let existing = t.mappings.firstOverlapping(x.iova, last)
        if setVAddr { return updateVaddr(t, existing, x) }
        if existing != nil { return .error(.EEXIST) }
        guard t.dmaAvail > 0 else { return .error(.ENOSPC) }
        guard iovaDMAValid(t, x.iova, last) else { return .error(.EINVAL) }
        let iommuMapped = t.hasIOMMUDomain
        if iommuMapped, let e = pinMapDMA(x, prot: prot) { return .error(e) }
        let m = DMAMapping(iova: x.iova, size: x.size, vaddr: x.vaddr, prot: prot, iommuMapped: iommuMapped)
        if t.tracking, let e = allocateBitmap(m, t) { return .error(e) }
        t.mappings.insert(m)
        t.dmaAvail -= 1
        return .ok(0)
    }

    /// The VADDR branch of `vfio_dma_do_map`: the range must be exactly an
    /// invalidated mapping, whose vaddr becomes valid again.
    private func updateVaddr(_ t: Type1State, _ existing: DMAMapping?, _ x: MapDMA) -> CallResult {
        guard let m = existing else { return .error(.ENOENT) }
        guard t.vaddrInvalid.contains(m.iova), m.iova == x.iova, m.size == x.size else { return .error(.EINVAL) }
        t.vaddrInvalid.remove(m.iova)
        return .ok(0)
    }

    /// `vfio_iommu_iova_dma_valid`: [iova, last] lies inside one of the
    /// domain's IOVA ranges (no ranges: anywhere).
    func iovaDMAValid(_ t: Type1State, _ iova: UInt64, _ last: UInt64) -> Bool {
        t.iovaRanges.isEmpty || t.iovaRanges.contains { $0.contains(iova) && $0.contains(last) }
    }

    /// `vfio_pin_map_dma`: the whole range is pinned at MAP time. A pointer
    /// that is not user memory, read-only memory for a writable mapping, or
    /// a range that runs into a hole fails to pin: EFAULT.
    func pinMapDMA(_ x: MapDMA, prot: UInt32) -> LinuxErrno? {
        let pinnable: Bool
        switch x.vaddr.pointerClass {
        case .valid: pinnable = true
        case .readOnly: pinnable = prot & 2 == 0
        case .null, .unmapped, .kernel: pinnable = false
        }
        if !pinnable || (x.vaddr.accessibleBytes.map { $0 < x.size } ?? false) { return .EFAULT }
        return nil
    }
}
