import Trace

/// What UNMAP_DMA returns and writes back.
struct UnmapOutcome {
    var result: CallResult?
    /// `unmap.size`, written back only on success.
    var sizeOut: UInt64?
    /// The bitmap buffer, when the call reached it.
    var bitmapOut: BitmapBytes?
}

/// UNMAP_DMA, split as the kernel splits it: the ioctl's argument checks
/// (`vfio_iommu_type1_unmap_dma`), then under the lock `vfio_dma_do_unmap`
/// with its VADDR branch (invalidating vaddrs, no mapping removed) and its
/// removal loop, which reports each mapping's bits through
/// `update_user_bitmap` before `vfio_remove_dma`
/// (`docs/kernel-rules.md#unmap-with-bitmap`, `docs/kernel-rules.md#unmap-order`).
extension BitmapEngine {
    /// `vfio_iommu_type1_unmap_dma`: `argsz`, known flags, GET_DIRTY_BITMAP
    /// alone, and for the bitmap its own `argsz`, pointer and size bounds.
    func unmapDMA(_ t: Type1State, _ x: UnmapDMA) -> UnmapOutcome {
        func fail(_ e: LinuxErrno) -> UnmapOutcome { UnmapOutcome(result: .error(e)) }
        let wantsBitmap = x.flags & VFIOUAPI.unmapFlagGetDirtyBitmap != 0
        guard x.argsz >= VFIOUAPI.dmaUnmapMinSize, x.flags & ~profile.unmapFlagMask == 0 else { return fail(.EINVAL) }
        if wantsBitmap && x.flags & (VFIOUAPI.unmapFlagAll | VFIOUAPI.unmapFlagVAddr) != 0 { return fail(.EINVAL) }
        if wantsBitmap {
            guard x.argsz >= VFIOUAPI.dmaUnmapMinSize + VFIOUAPI.bitmapSize else { return fail(.EINVAL) }
            guard let b = x.bitmap else { return fail(.EFAULT) }
            guard b.data.pointerClass != .kernel else { return fail(.EINVAL) }
            let shift = UInt64(b.pgsize.trailingZeroBitCount & 63)
            guard VFIOLimits.bitmapSizeIsValid(npages: x.size >> shift, size: b.size) else { return fail(.EINVAL) }
        }
        return doUnmap(t, x)
    }

    /// `vfio_dma_do_unmap`: alignment and range checks (ALL is iova 0 size
    /// 0), the bitmap's page size and tracking state, v16's exact-mapping
    /// rule or v2's no-bisect rule, then the VADDR branch or the removal
    /// loop in the profile's order.
    func doUnmap(_ t: Type1State, _ x: UnmapDMA) -> UnmapOutcome {
        func fail(_ e: LinuxErrno) -> UnmapOutcome { UnmapOutcome(result: .error(e)) }
        let wantsBitmap = x.flags & VFIOUAPI.unmapFlagGetDirtyBitmap != 0
        let all = x.flags & VFIOUAPI.unmapFlagAll != 0
        let vaddr = x.flags & VFIOUAPI.unmapFlagVAddr != 0
        if vaddr && profile.vaddrGuards && t.hasEmulatedGroups { return fail(.EBUSY) }
        let pgsize = t.pgsize
        guard x.iova & (pgsize - 1) == 0 else { return fail(.EINVAL) }
        var size = x.size
        if all {
            guard x.iova == 0 && x.size == 0 else { return fail(.EINVAL) }
            size = .max
        } else {
            guard size != 0, size & (pgsize - 1) == 0, x.iova &+ (size - 1) >= x.iova else { return fail(.EINVAL) }
        }
        var report = wantsBitmap
        if wantsBitmap {
            if !t.tracking {
                // v16 unmapped anyway and skipped the bitmap.
                if profile.unmapBitmapRequiresTracking { return fail(.EINVAL) }
                report = false
            }
            if x.bitmap!.pgsize != pgsize { return fail(.EINVAL) }
        }
        let last = all ? UInt64.max : x.iova &+ (size - 1)
        if profile.queryRange == .exactSingleMapping && wantsBitmap {
            // v16 5/7: one mapping, exactly; none at all dereferenced NULL.
            guard let m = t.mappings.firstOverlapping(x.iova, last) else {
                notes.append(.hazard("v16 unmap with GET_DIRTY_BITMAP and no mapping in range: NULL dereference (kernel oops)"))
                return fail(.EFAULT)
            }
            guard m.iova == x.iova, m.size == size else { return fail(.EINVAL) }
        } else if t.v2 && !all {
            if let m = t.mappings.containing(x.iova), m.iova != x.iova { return fail(.EINVAL) }
            if let m = t.mappings.containing(last), m.last != last { return fail(.EINVAL) }
        }
        if vaddr { return invalidateVaddrs(t, x, last: last) }
        var buffer = report ? UserBitmapBuffer(size: x.bitmap!.size, prior: x.bitmap!.prior, pointer: x.bitmap!.data) : nil
        if profile.unmapInTreeOrder {
            return unmapInTreeOrder(t, x, last: last, report: report, buffer: &buffer)
        }
        return unmapInIOVAOrder(t, x, last: last, report: report, buffer: &buffer)
    }

    /// The VADDR branch of `vfio_dma_do_unmap`: every mapping in range gets
    /// its vaddr invalidated (mappings stay); one already invalid undoes
    /// the call's marks and is EINVAL. `unmap.size` is the bytes covered.
    private func invalidateVaddrs(_ t: Type1State, _ x: UnmapDMA, last: UInt64) -> UnmapOutcome {
        var marked: [UInt64] = []
        var covered: UInt64 = 0
        for m in t.mappings.overlapping(x.iova, last) {
            if !t.v2 && x.iova > m.iova { break }
            if t.vaddrInvalid.contains(m.iova) {
                for iova in marked { t.vaddrInvalid.remove(iova) }
                return UnmapOutcome(result: .error(.EINVAL))
            }
            t.vaddrInvalid.insert(m.iova)
            marked.append(m.iova)
            covered &+= m.size
        }
        return UnmapOutcome(result: .ok(0), sizeOut: covered)
    }

    /// The removal loop from 5.12 (40ae9b807b89): mappings in ascending
    /// IOVA order, each reported then removed; a fault stops it with the
    /// earlier mappings gone.
    private func unmapInIOVAOrder(_ t: Type1State, _ x: UnmapDMA, last: UInt64, report: Bool,
                                  buffer: inout UserBitmapBuffer?) -> UnmapOutcome {
        var unmapped: UInt64 = 0
        var result = CallResult.ok(0)
        let candidates = t.mappings.overlapping(x.iova, last)
        var end = candidates.startIndex
        for m in candidates {
            if !t.v2 && x.iova > m.iova { break }
            guard releaseForUnmap(m, t, x, report: report, buffer: &buffer) else {
                result = .error(.EFAULT)
                break
            }
            unmapped &+= m.size
            end += 1
        }
        let removed = candidates[candidates.startIndex..<end]
        for m in removed { freeBitmap(m) }
        t.mappings.remove(consecutive: removed)
        t.dmaAvail += UInt32(removed.count)
        return UnmapOutcome(result: result, sizeOut: result.isSuccess ? unmapped : nil,
                            bitmapOut: buffer.flatMap { readableContents($0, x.bitmap!) })
    }

    /// The pre-5.12 removal loop: `while ((dma = vfio_find_dma(iommu, iova,
    /// size)))`, each mapping found from the tree's root, reported and
    /// removed before the next is looked for.
    private func unmapInTreeOrder(_ t: Type1State, _ x: UnmapDMA, last: UInt64, report: Bool,
                                  buffer: inout UserBitmapBuffer?) -> UnmapOutcome {
        var unmapped: UInt64 = 0
        var result = CallResult.ok(0)
        let size = last &- x.iova &+ 1
        while let m = t.mappings.tree?.find(start: x.iova, size: size) {
            if !t.v2 && x.iova > m.iova { break }
            guard releaseForUnmap(m, t, x, report: report, buffer: &buffer) else {
                result = .error(.EFAULT)
                break
            }
            unmapped &+= m.size
            freeBitmap(m)
            t.mappings.remove(m)
            t.dmaAvail += 1
        }
        return UnmapOutcome(result: result, sizeOut: result.isSuccess ? unmapped : nil,
                            bitmapOut: buffer.flatMap { readableContents($0, x.bitmap!) })
    }

    /// One mapping's turn in the removal loop, before `vfio_remove_dma`: a
    /// mapping with pinned pages has the vendor driver told to unpin
    /// (`vfio_notify_dma_unmap`), which it does, its dirty bits staying;
    /// then its bits go to the caller's bitmap. False on a fault.
    private func releaseForUnmap(_ m: DMAMapping, _ t: Type1State, _ x: UnmapDMA, report: Bool,
                                 buffer: inout UserBitmapBuffer?) -> Bool {
        // The vendor drivers are told to unpin [dma->iova, +size) (their
        // dma_unmap), and unpin what they hold there. A page the kernel
        // still holds after that -- pinned below the mapping
        // (BitmapEngine.pin), outside the range; or one a driver's unpin
        // looked for in another mapping (kernelUnpin), which it no longer
        // holds; or one whose device is closed -- stays in dma->pfn_list,
        // and vfio_dma_do_unmap retries until BUG_ON(++retries > 10): a
        // kernel BUG on 6.1 and 6.12 in the lab (vfiotrace fuzz's long runs,
        // both guests; scripts/lab/pin-lost-to-later-mapping --unmap).
        if !m.pinned.isEmpty { notifyDMAUnmap(m, t) }
        if let stuck = m.pinned.minKey() {
            let why = stuck < m.iova ? "pinned below it, outside the range the device is asked to release"
                : "that no open device holds any more (a device's unpin looked for it in another mapping its page overlaps, or the device is closed)"
            notes.append(.hazard("UNMAP of the mapping at 0x\(String(m.iova, radix: 16)) holding page 0x\(String(stuck, radix: 16)) \(why): vfio_dma_do_unmap's retries end in BUG_ON (kernel BUG at vfio_iommu_type1.c)"))
        }
        m.removeAllPins()
        guard report else { return true }
        let base = profile.queryRange == .exactSingleMapping ? m.iova : x.iova
        return writeUserBitmap(m, t, base: base, into: &buffer!)
    }

    /// `update_user_bitmap` for mapping `m` into the caller's buffer, with
    /// bit 0 at `base`; in v16 the mapping's bitmap is copied unshifted.
    /// Returns false on a fault.
    func writeUserBitmap(_ m: DMAMapping, _ t: Type1State, base: UInt64, into buffer: inout UserBitmapBuffer) -> Bool {
        let nbits = m.size >> t.pgshift
        if m.bitmap == nil { m.bitmap = DMABitmap(nbits: nbits) }
        let allDirty = t.reportsAllDirty(m, profile)
        if profile.queryRange == .exactSingleMapping {
            if allDirty { m.bitmap!.set(0, count: nbits) }
            return m.bitmap!.copyOut(VFIOLimits.dirtyBitmapBytes(nbits), to: &buffer, atByte: 0)
        }
        return m.bitmap!.updateUserBitmap(&buffer, pageOffset: (m.iova - base) >> t.pgshift, allDirty: allDirty,
                                          nbits: nbits)
    }
}
